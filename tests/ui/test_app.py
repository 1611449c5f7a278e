"""``rddm-preview`` as a program: its options, Apply's JSON line, an engine that cannot start, and
a screenshot of the window under Xvfb."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from rddm_preview.app import build_parser, main
from rddm_preview.window import PreviewWindow
from tests.conftest import REPO
from tests.ui.conftest import SAMPLE

PREVIEW = str(Path(sys.executable).with_name("rddm-preview"))


def test_options():
    parser = build_parser()
    args = parser.parse_args(["a.CR2", "--strength", "30", "--roi", "10,20,256,128", "--apply"])
    assert (args.file, args.strength, args.roi, args.apply) == ("a.CR2", 30, (10, 20, 256, 128), True)
    for bad in (["--strength", "101"], ["--strength", "x"], ["--roi", "1,2,3"], ["--roi", "0,0,0,10"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def run_main(argv: list[str], when_ready) -> int:
    """``main(argv)`` in this process; ``when_ready(window)`` once the region is shown."""
    app = QApplication.instance()

    def hook() -> None:
        shown = [widget for widget in app.topLevelWidgets() if widget.isVisible()]
        window = next(widget for widget in shown if isinstance(widget, PreviewWindow))
        window.region_ready.connect(lambda: when_ready(window))
        window.problem_shown.connect(lambda message: app.exit(99))

    QTimer.singleShot(0, hook)
    # never hang the suite; stopped afterwards, as an exit() outside exec() would end later tests' waits
    guard = QTimer(singleShot=True, interval=120_000, timeout=lambda: app.exit(98))
    guard.start()
    try:
        return main(argv)
    finally:
        guard.stop()


def test_apply_prints_the_choice_and_exits(qtbot, engine_state, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RDDM_PREVIEW_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # main() installs its own
    argv = [
        str(SAMPLE),
        "--state-dir",
        str(engine_state),
        "--apply",
        "--strength",
        "30",
        "--roi",
        "0,0,256,256",
    ]

    def apply(window: PreviewWindow) -> None:
        assert window.apply_button.isVisible()
        window.format.setCurrentIndex(window.format.findData("tiff"))
        window.apply_button.click()

    assert run_main(argv, apply) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == {"strength": 0.3, "format": "tiff"}


def test_closing_without_apply_prints_nothing(qtbot, engine_state, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RDDM_PREVIEW_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    argv = [str(SAMPLE), "--state-dir", str(engine_state), "--apply", "--roi", "0,0,256,256"]
    assert run_main(argv, lambda window: window.close()) == 1
    assert capsys.readouterr().out == ""


def test_an_engine_that_cannot_start_shows_why(qtbot, make_window, tmp_path):
    """No engine runs in a fresh state folder: the panel starts one, and its failure (a model that
    does not exist) is shown in the window."""
    window = make_window(
        state_dir=str(tmp_path / "state"), start_options=("--model", str(tmp_path / "no-model"))
    )
    with qtbot.waitSignal(window.problem_shown, timeout=120_000) as shown:
        window.open_file(str(SAMPLE))
    message = shown.args[0]
    assert "engine did not start" in message and "Traceback" not in message
    assert window.retry.isVisible() and window.isVisible()


def test_screenshot_under_xvfb(engine_state, tmp_path):
    """The window as a user sees it (X11 under Xvfb), saved for the README: out/ui/preview-panel.png."""
    if shutil.which("xvfb-run") is None or shutil.which("Xvfb") is None:
        pytest.skip("xvfb-run / Xvfb are not installed (make test installs them as root)")
    shot = REPO / "out" / "ui" / "preview-panel.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "RDDM_PREVIEW_SETTINGS": str(tmp_path / "settings.ini")}
    command = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", PREVIEW, str(SAMPLE)]
    command += ["--state-dir", str(engine_state), "--roi", "192,0,512,512", "--screenshot", str(shot)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with Image.open(shot) as image:
        assert image.size[0] >= 900 and image.size[1] >= 600
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 10  # pictures and chrome, not an empty window
    # the chrome is neutral grey: no colour cast in the window's background (its top-right corner)
    corner = pixels[2:12, -12:-2].reshape(-1, 3)
    assert np.ptp(corner.mean(axis=0)) < 2
