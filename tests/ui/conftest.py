"""The preview panel against a real engine: one started by the panel's own code (``rddm engine
start`` with the tiny test model) in a temporary state folder, stopped with ``rddm engine stop``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the QApplication
pytest.importorskip("PyQt6.QtWidgets", reason="PyQt6 is not installed (pip install -e '.[ui]')")

from PyQt6.QtCore import QSettings  # noqa: E402

from rddm.synth.dataset import write_mosaic_dng  # noqa: E402
from rddm_preview.engine import Engine  # noqa: E402
from rddm_preview.window import Options, PreviewWindow  # noqa: E402
from tests.conftest import REPO  # noqa: E402

SAMPLE = REPO / "engine" / "rddm" / "data" / "sample.dng"
RDDM = str(Path(sys.executable).with_name("rddm"))
REGION_TIMEOUT_MS = 120_000


@pytest.fixture(scope="session")
def engine_state(tmp_path_factory, tiny_model_dir):
    """The state folder of an engine started the way the panel starts one."""
    folder = tmp_path_factory.mktemp("engine-state")
    Engine.connect(
        given_state_dir=str(folder), start_options=["--model", str(tiny_model_dir), "--allow-untrained"]
    )
    yield folder
    subprocess.run(
        [RDDM, "engine", "stop", "--state-dir", str(folder)], check=False, capture_output=True, timeout=120
    )


@pytest.fixture(scope="session")
def engine(engine_state) -> Engine:
    """The test engine, found again through its state file (as a second panel would)."""
    return Engine.connect(given_state_dir=str(engine_state))


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "rddm-preview.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings, engine_state):
    """``make_window(**options)``: a shown window talking to the test engine."""

    def make(**options) -> PreviewWindow:
        options.setdefault("state_dir", str(engine_state))
        window = PreviewWindow(settings, Options(**options))
        qtbot.addWidget(window)
        window.show()
        return window

    return make


@pytest.fixture
def synthesized_dng(tmp_path) -> Path:
    """A smooth synthesized GRBG DNG (384 x 512) in a folder whose name needs quoting."""
    folder = tmp_path / "shoot ü 'x'"
    folder.mkdir()
    yy, xx = np.mgrid[0:384, 0:512].astype(np.float32)
    mosaic = 0.1 + 0.5 * (xx / 511) * (0.6 + 0.4 * np.sin(yy / 23)) + 0.1 * np.cos(xx / 17)
    return write_mosaic_dng(
        folder / "synth.dng", mosaic.astype(np.float32), "GRBG", (2.0, 1.0, 1.6), np.eye(3)
    )


def open_and_wait(qtbot, window: PreviewWindow, path: Path) -> None:
    """Open ``path`` and wait until the region and the strip of crops are shown."""
    with qtbot.waitSignals([window.region_ready, window.strip_ready], timeout=REGION_TIMEOUT_MS):
        window.open_file(str(path))
