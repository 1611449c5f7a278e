"""Tiles side by side on the CPU: worker threads that each run torch on one thread.

The RDDM models are small: split over threads, each convolution of a tile spends much of its time
in OpenMP's synchronisation, and when other processes share the cores every one of those barriers
waits for a descheduled thread (a 12 MP restore was seen to take 5-10x longer under load). One
whole tile per core has no barriers between them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import torch


class TileWorkers:
    """``count`` threads, each with a torch thread count of 1; the rest of the process keeps its own."""

    def __init__(self, count: int):
        if count < 1:
            raise ValueError(f"need at least one worker, got {count}")
        self.count = count
        default = torch.get_num_threads()
        started = threading.Barrier(count + 1)

        def one_thread() -> None:
            torch.get_num_threads()  # take the process default first, which set_num_threads overrides
            torch.set_num_threads(1)
            started.wait()

        self._pool = ThreadPoolExecutor(count, thread_name_prefix="rddm-tile", initializer=one_thread)
        for _ in range(count):  # each waits at the barrier, so every submit starts a new thread
            self._pool.submit(int)
        started.wait()
        # set_num_threads also set the count that threads started later begin with: put it back.
        torch.set_num_threads(default)

    def map(self, function: Callable, items: Iterable) -> list:
        """``[function(item) for item in items]``, run on the workers."""
        return list(self._pool.map(function, items))
