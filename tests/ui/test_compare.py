"""The before/after view on its own: what is drawn where, zoom, pan and the divider."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QColor, QImage

from rddm_preview.compare import FLIP, SIDE_BY_SIDE, SPLIT, ZOOM_STEPS, Compare


def solid(width: int, height: int, colour: QColor) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(colour)
    return image


RED, BLUE = QColor(200, 30, 30), QColor(30, 30, 200)


@pytest.fixture
def compare(qtbot) -> Compare:
    widget = Compare()
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    # larger than the widget at 1:1 on screens of up to 2 device pixels per point
    widget.set_images(before=solid(1600, 1200, RED), after=solid(1600, 1200, BLUE))
    return widget


def colour_at(widget: Compare, x: int, y: int) -> tuple[int, int, int]:
    image = widget.grab().toImage()
    ratio = image.devicePixelRatio()
    colour = image.pixelColor(round(x * ratio), round(y * ratio))
    return colour.red(), colour.green(), colour.blue()


def test_split_shows_before_left_and_after_right(compare):
    assert compare.mode == SPLIT and compare.current_zoom() == 1.0
    assert colour_at(compare, 100, 300) == (200, 30, 30)
    assert colour_at(compare, 500, 300) == (30, 30, 200)


def test_dragging_the_divider(qtbot, compare):
    qtbot.mousePress(compare, Qt.MouseButton.LeftButton, pos=QPoint(300, 100))
    qtbot.mouseMove(compare, QPoint(450, 100))
    qtbot.mouseRelease(compare, Qt.MouseButton.LeftButton, pos=QPoint(450, 100))
    assert compare.divider == pytest.approx(0.75, abs=0.01)
    assert colour_at(compare, 400, 300) == (200, 30, 30)
    assert colour_at(compare, 500, 300) == (30, 30, 200)


def test_side_by_side_keeps_both_views_on_the_same_pixels(qtbot, compare):
    compare.set_mode(SIDE_BY_SIDE)
    left, right = compare.ports()
    assert colour_at(compare, round(left.center().x()), 200) == (200, 30, 30)
    assert colour_at(compare, round(right.center().x()), 200) == (30, 30, 200)
    # a pan in one half moves both: the same widget offset maps to the same image point
    qtbot.mousePress(compare, Qt.MouseButton.LeftButton, pos=QPoint(100, 200))
    qtbot.mouseMove(compare, QPoint(160, 230))
    qtbot.mouseRelease(compare, Qt.MouseButton.LeftButton, pos=QPoint(160, 230))
    offset = QPointF(10, -20)
    assert compare.to_image(left.center() + offset) == compare.to_image(right.center() + offset)
    ratio = compare.devicePixelRatioF()
    assert compare.centre == QPointF(800 - 60 * ratio, 600 - 30 * ratio)


def test_zoom_steps_fit_and_anchor(compare):
    anchor = QPointF(150, 100)
    under = compare.to_image(anchor)
    compare.zoom_in(anchor)
    assert compare.current_zoom() == 2.0
    assert compare.to_image(anchor) == under  # the point under the cursor stays put
    compare.set_zoom(None)
    assert compare.fit
    fit = min(600 / 1600, 400 / 1200) * compare.devicePixelRatioF()
    assert compare.current_zoom() == pytest.approx(fit)
    compare.zoom_in()
    assert compare.current_zoom() == min(step for step in ZOOM_STEPS if step > fit) and not compare.fit


def test_flip_and_space(compare):
    compare.toggle_before_after()
    assert compare.mode == FLIP and colour_at(compare, 500, 300) == (200, 30, 30)
    compare.toggle_before_after()
    assert colour_at(compare, 100, 300) == (30, 30, 200)


def test_one_to_one_is_one_image_pixel_per_device_pixel(compare):
    """A one-pixel checker stays a checker at 1:1: nothing is resampled."""
    checker = QImage(64, 64, QImage.Format.Format_RGB32)
    for y in range(64):
        for x in range(64):
            checker.setPixelColor(x, y, QColor(255, 255, 255) if (x + y) % 2 else QColor(0, 0, 0))
    compare.set_mode(FLIP)
    compare.set_images(before=checker, after=checker)
    compare.set_zoom(1.0)
    image = compare.grab().toImage()
    ratio = compare.devicePixelRatioF()
    centre = QPoint(round(300 * ratio), round(200 * ratio))
    values = {image.pixelColor(centre + QPoint(dx, 0)).red() for dx in range(-4, 4)}
    assert values == {0, 255}


def test_the_same_at_two_device_pixels_per_point():
    """HiDPI: these tests again with Qt scaling the screen by 2 (1:1 stays one image pixel per
    device pixel; labels and chrome double)."""
    if os.environ.get("QT_SCALE_FACTOR"):
        pytest.skip("already running scaled")
    env = {**os.environ, "QT_SCALE_FACTOR": "2", "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        # without the conftests: this file needs no engine, and no torch to import
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", __file__],
        env=env,
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 skipped" in done.stdout
