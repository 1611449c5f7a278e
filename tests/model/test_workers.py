"""Tile workers: one torch thread each, and the rest of the process keeps its thread count."""

import threading

import pytest
import torch

from rddm.model.workers import TileWorkers


def test_workers_run_torch_on_one_thread_each_and_leave_the_process_default():
    default = torch.get_num_threads()
    workers = TileWorkers(2)
    assert workers.map(lambda _: torch.get_num_threads(), range(4)) == [1, 1, 1, 1]
    assert torch.get_num_threads() == default
    started_later = []
    thread = threading.Thread(target=lambda: started_later.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert started_later == [default]


def test_workers_map_keeps_the_order():
    assert TileWorkers(2).map(lambda value: value * value, range(6)) == [0, 1, 4, 9, 16, 25]


def test_workers_need_at_least_one():
    with pytest.raises(ValueError, match="at least one"):
        TileWorkers(0)
