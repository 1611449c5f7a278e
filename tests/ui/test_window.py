"""The window against the real test engine: opening RAWs, strengths from the cache, regions, export."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rawpy
from PIL import Image
from PyQt6.QtCore import QPoint, QRect, Qt, QTimer
from PyQt6.QtGui import QImage

from rddm_preview.compare import FLIP, SPLIT
from tests.conftest import shared_data
from tests.ui.conftest import REGION_TIMEOUT_MS, SAMPLE, open_and_wait


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8)
    return data.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3].reshape(
        image.height(), image.width(), 3
    )


def test_finds_the_running_engine(engine, engine_state):
    """A second connect finds the engine the first one started instead of starting another."""
    first = engine.health()
    from rddm_preview.engine import Engine

    again = Engine.connect(given_state_dir=str(engine_state))
    assert again.url == engine.url
    assert again.health()["pid"] == first["pid"]


def test_opens_a_synthesized_dng(qtbot, make_window, synthesized_dng):
    window = make_window(roi=(100, 60, 256, 192))
    open_and_wait(qtbot, window, synthesized_dng)
    assert window.picture.width() == 512 and window.picture.height() == 384
    assert "512 × 384" in window.file_label.text() and "GRBG" in window.file_label.text()
    assert window.region == QRect(100, 60, 256, 192)
    assert window.overview.region == window.region
    for image in (window.compare.before, window.compare.after):
        assert (image.width(), image.height()) == (256, 192)
        assert pixels(image).std() > 1.0  # a picture, not a flat fill
    assert not window.overview.image.isNull()
    assert all(button.isEnabled() for button in window.strip.buttons.values())
    assert window.strip.buttons[50].isChecked()
    assert not window.problem.isVisible()


def test_opens_a_real_raw(qtbot, make_window):
    path = shared_data("raw", "gopro_crops", "gopro_hero6_GOPR0024_crop_RGGB.dng")
    window = make_window()
    window.region_size.setCurrentIndex(window.region_size.findData("256x256"))
    open_and_wait(qtbot, window, path)
    assert "GoPro" in window.file_label.text()
    assert (window.picture.width(), window.picture.height()) == (1536, 1024)
    # the default region is centred on the picture
    assert window.region == QRect(640, 384, 256, 256)
    assert (window.compare.after.width(), window.compare.after.height()) == (256, 256)


@pytest.fixture
def sample_window(qtbot, make_window):
    window = make_window(roi=(256, 128, 256, 256), strength=50)
    open_and_wait(qtbot, window, SAMPLE)
    return window


def test_strength_moves_blend_from_the_cache(qtbot, sample_window, engine):
    window = sample_window
    runs = engine.health()["model_runs"]
    shown = pixels(window.compare.after).copy()
    for value in (80, 10):
        with qtbot.waitSignal(window.after_ready, timeout=30_000):
            window.slider.setValue(value)
        assert window.shown_strength == value
        assert window.last_after_cached is True  # X-Rddm-Cache: hit
        assert window.compare.after_label == f"After · {value}"
        now = pixels(window.compare.after)
        assert np.abs(now.astype(int) - shown).mean() > 0.1  # the after image changed
        shown = now.copy()
    assert engine.health()["model_runs"] == runs
    assert window.strip.buttons[25].isChecked() is False and window.spin.value() == 10


def test_presets_and_strip_set_the_strength(qtbot, sample_window):
    window = sample_window
    with qtbot.waitSignal(window.after_ready, timeout=30_000):
        window.strip.buttons[75].click()
    assert window.slider.value() == 75 and window.strip.buttons[75].isChecked()


def test_a_new_region_runs_the_model_once(qtbot, sample_window, engine):
    """The region's model run (its tiles) happens once: the strip and later strengths blend."""
    window = sample_window
    runs, misses = engine.health()["model_runs"], window.model_previews
    overview = window.overview
    # a click outside the marker centres the region on it: the left part of the picture
    target = overview.picture_rect()
    point = QPoint(round(target.left() + target.width() * 0.2), round(target.top() + target.height() * 0.5))
    with qtbot.waitSignals([window.region_ready, window.strip_ready], timeout=REGION_TIMEOUT_MS):
        qtbot.mouseClick(overview, Qt.MouseButton.LeftButton, pos=point)
    assert window.region.size() == QRect(0, 0, 256, 256).size()
    assert window.region.x() < 100
    assert window.model_previews == misses + 1  # one preview ran the model, on this region only
    ran = engine.health()["model_runs"]  # device-lock entries: one per tile of the region
    assert 1 <= ran - runs <= 4
    with qtbot.waitSignal(window.after_ready, timeout=30_000):
        window.slider.setValue(30)
    assert engine.health()["model_runs"] == ran and window.model_previews == misses + 1


def test_the_window_stays_responsive_while_the_model_runs(qtbot, sample_window):
    """The event loop keeps running while a region is restored: a 20 ms timer never stalls."""
    window = sample_window
    ticks: list[float] = []
    timer = QTimer(window, interval=20, timeout=lambda: ticks.append(time.monotonic()))
    timer.start()
    with qtbot.waitSignal(window.region_ready, timeout=REGION_TIMEOUT_MS):
        window.choose_region(QRect(0, 0, 512, 512))
        assert window.busy.isVisibleTo(window) and window.cancel_button.isVisibleTo(window)
    timer.stop()
    assert window.model_previews >= 1 and len(ticks) > 5
    assert max(np.diff(ticks)) < 0.5
    assert not window.busy.isVisibleTo(window)


def test_cancel_keeps_the_region_shown(qtbot, sample_window):
    window = sample_window
    shown, after = QRect(window.region), QImage(window.compare.after)
    window.choose_region(QRect(0, 0, 256, 256))
    assert window.region_busy and window.cancel_button.isVisibleTo(window)
    window.cancel_region()  # before any result can arrive: every result is dropped
    qtbot.wait(1500)
    assert not window.region_busy and not window.cancel_button.isVisibleTo(window)
    assert window.region == shown and window.overview.region == shown
    assert window.compare.after == after


def test_keyboard_shortcuts(qtbot, sample_window):
    window = sample_window
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    compare = window.compare
    assert compare.mode == SPLIT and compare.current_zoom() == 1.0
    qtbot.keyClick(window, Qt.Key.Key_Plus)
    assert compare.current_zoom() == 2.0
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    assert compare.current_zoom() == 0.5
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert compare.current_zoom() == 1.0
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert compare.fit
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert compare.mode == FLIP and compare.flip_shows_before
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not compare.flip_shows_before
    assert window.mode.currentData() == FLIP


@pytest.mark.parametrize("fmt", ["jpeg", "dng"])
def test_export_writes_a_file_that_opens(qtbot, sample_window, tmp_path, fmt):
    window = sample_window
    window.slider.setValue(40)
    with qtbot.waitSignal(window.export_finished, timeout=REGION_TIMEOUT_MS) as finished:
        window.export(fmt, str(tmp_path))
    output = finished.args[0]
    assert output and output.startswith(str(tmp_path))
    if fmt == "jpeg":
        with Image.open(output) as image:
            assert image.size == (768, 512)
    else:
        with rawpy.imread(output) as raw:
            assert raw.sizes.width == 768 and raw.sizes.height == 512
    assert window.export_label.text() == f"Exported {output}"
    assert window.export_button.isEnabled() and not window.export_progress.isVisibleTo(window)


def test_settings_remember_strength_and_mode(qtbot, make_window, settings):
    window = make_window(strength=35)
    window.mode.setCurrentIndex(window.mode.findData("side"))
    window.resize(777, 555)  # within the offscreen screen (800 x 600)
    window.close()
    again = make_window()
    assert again.slider.value() == 35
    assert again.compare.mode == "side"
    assert again.size().width() == 777


def test_missing_file_shows_a_message(qtbot, make_window, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.problem_shown, timeout=30_000) as shown:
        window.open_file(str(tmp_path / "gone.CR2"))
    assert "no such file" in shown.args[0]
    assert window.problem.isVisible() and window.problem.text() == shown.args[0]
    assert window.isVisible() and "Traceback" not in shown.args[0]


def test_a_file_that_is_not_a_raw_shows_a_message(qtbot, make_window, tmp_path):
    notes = tmp_path / "notes.dng"
    notes.write_text("not a photo\n")
    window = make_window()
    with qtbot.waitSignal(window.problem_shown, timeout=30_000) as shown:
        window.open_file(str(notes))
    message = shown.args[0]
    assert "notes.dng" in message and "Traceback" not in message and "\n" not in message
    assert window.compare.placeholder == "Cannot open notes.dng"
    # the window is still usable: the next file opens
    open_and_wait(qtbot, window, SAMPLE)
    assert not window.problem.isVisible()


def test_engine_down_shows_a_message(qtbot, make_window, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RDDM_ENGINE_TOKEN", "x" * 20)
    window = make_window(engine_url=f"http://127.0.0.1:{port}")
    with qtbot.waitSignal(window.problem_shown, timeout=30_000) as shown:
        window.open_file(str(SAMPLE))
    assert f"no engine answers at http://127.0.0.1:{port}" in shown.args[0]
    assert window.retry.isVisible()
