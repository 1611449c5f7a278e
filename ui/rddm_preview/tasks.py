"""Engine calls off the GUI thread: each runs in a worker thread and reports back by a queued
signal, so the window never waits on the network or the model.

Workers are daemon threads rather than a QThreadPool: a pool waits for its threads when it is
destroyed, and a model run the user walked away from must not hold the window open at exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from rddm_preview.engine import EngineProblem


class _Signals(QObject):
    done = pyqtSignal(object)
    failed = pyqtSignal(str)
    progress = pyqtSignal(object)


class Tasks(QObject):
    """``run`` returns at once; ``on_done`` / ``on_failed`` (and ``on_progress`` for work that takes
    a progress callback) are called later on the GUI thread."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: set[_Signals] = set()
        self._lock = threading.Lock()

    def run(
        self,
        work: Callable[..., Any],
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None],
        on_progress: Callable[[Any], None] | None = None,
    ) -> None:
        signals = _Signals()  # lives in the GUI thread, so its emits are queued to it; kept alive by us
        signals.done.connect(on_done)
        signals.failed.connect(on_failed)
        if on_progress is not None:
            signals.progress.connect(on_progress)
        signals.done.connect(lambda _: self._finished(signals))
        signals.failed.connect(lambda _: self._finished(signals))
        with self._lock:
            self._running.add(signals)
        thread = threading.Thread(
            target=self._call, args=(work, signals, on_progress is not None), daemon=True, name="rddm-preview"
        )
        thread.start()

    @staticmethod
    def _call(work: Callable[..., Any], signals: _Signals, with_progress: bool) -> None:
        try:
            result = work(signals.progress.emit) if with_progress else work()
        except EngineProblem as problem:
            signals.failed.emit(str(problem))
        except Exception as error:  # a bug reaches the window as a message, never a dead thread
            signals.failed.emit(f"unexpected error: {type(error).__name__}: {error}")
        else:
            signals.done.emit(result)

    def _finished(self, signals: _Signals) -> None:
        with self._lock:
            self._running.discard(signals)
        signals.deleteLater()

    def busy(self) -> int:
        """How many calls have not reported yet."""
        with self._lock:
            return len(self._running)
