"""The engine's work without HTTP: stopping with a job running, the caches' bounds."""

from __future__ import annotations

import time

import numpy as np

from rddm.model.registry import load_pipeline
from rddm.server.service import Engine, LruCache
from tests.server.conftest import write_big_dng


def test_stop_finishes_the_tile_and_marks_the_running_job_cancelled(tiny_model_dir, tmp_path):
    engine = Engine(load_pipeline(tiny_model_dir), model_name="test-tiny", tile=128)
    source = write_big_dng(tmp_path / "big.dng")
    out = tmp_path / "out"
    out.mkdir()
    running = engine.submit([str(source)], output_dir=str(out))
    queued = engine.submit([str(source)], output_dir=str(out))
    deadline = time.monotonic() + 60
    while running.file_progress == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    runs = engine.device_lock.runs
    engine.stop()
    assert running.state == "cancelled" and queued.state == "cancelled"
    assert engine.device_lock.runs - runs <= 1  # at most the tile it was on
    assert list(out.iterdir()) == []
    assert not engine._worker.is_alive()


def test_lru_cache_stays_within_its_bytes():
    cache = LruCache(max_bytes=3000, size_of=lambda value: value.nbytes)
    for index in range(5):
        cache.put(index, np.zeros(1000, np.uint8))
        cache.get(0)  # keeps 0 the most recent
    assert len(cache) == 3 and cache.get(0) is not None and cache.get(1) is None
    assert cache.get(4) is not None
