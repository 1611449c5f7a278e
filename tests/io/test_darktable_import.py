"""darktable 4.2 opens what the DNG writers make: exported to JPEG by darktable-cli, colours intact."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rddm.color import camera_to_srgb_matrix, srgb_decode
from rddm.io import write_cfa_dng, write_linear_dng
from rddm.io.images import upright
from rddm.raw import mosaic_rgb

pytestmark = pytest.mark.darktable

# What darktable prints when it does not understand a file: a failed loader, no input profile,
# no white balance. (It also warns about running as root, which is harmless.)
TROUBLE = re.compile(r"colorin|input profile|unsupported|rawspeed|failed|error", re.IGNORECASE)
GREY, CLIPPED, ORANGE = 1, 2, 3  # patch labels
PATCH_RGB = {GREY: (0.18, 0.18, 0.18), CLIPPED: (1.0, 1.0, 1.0), ORANGE: (0.3, 0.1, 0.05)}


def _darktable_cli() -> str:
    path = shutil.which("darktable-cli")
    if path is None:
        pytest.skip("darktable-cli is not installed (make test installs it as root)")
    return path


def _export(source: Path) -> tuple[np.ndarray, str]:
    """darktable-cli ``source`` -> JPEG in a fresh config; returns (RGB uint8 pixels, its output)."""
    target = source.with_suffix(".jpg")
    with tempfile.TemporaryDirectory() as config:
        done = subprocess.run(
            [
                "timeout",
                "-s",
                "KILL",
                "120",
                _darktable_cli(),
                str(source),
                str(target),
                "--core",
                "--configdir",
                config,
                "--library",
                ":memory:",
                "--conf",
                "write_sidecar_files=never",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert target.exists(), output
    return cv2.imread(str(target))[..., ::-1], output


def _patches(height: int = 96, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(labels (H, W), balanced camera RGB (H, W, 3)): grey left, clipped right, orange top-left."""
    labels = np.full((height, width), CLIPPED, dtype=np.uint8)
    labels[:, : width // 2] = GREY
    labels[: height // 2, : width // 4] = ORANGE
    balanced = np.zeros((height, width, 3), dtype=np.float32)
    for label, rgb in PATCH_RGB.items():
        balanced[labels == label] = rgb
    return labels, balanced


def _patch_mean(pixels: np.ndarray, labels: np.ndarray, label: int) -> np.ndarray:
    # Away from the edges, where demosaicing and JPEG blur neighbouring patches together.
    inner = cv2.erode((labels == label).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return pixels[inner].reshape(-1, 3).mean(axis=0)


def _assert_neutral(rgb: np.ndarray, what: str) -> None:
    assert np.ptp(rgb) <= 3, f"{what} is not neutral: {rgb}"


def test_linear_dng_renders_neutral_and_in_colour(tmp_path, exif, xyz_to_cam, wb_gains):
    labels, balanced = _patches()
    source = write_linear_dng(
        tmp_path / "restored.dng",
        balanced,
        wb_gains=wb_gains,
        xyz_to_cam=xyz_to_cam,
        exif=exif,
        orientation=6,
    )
    pixels, output = _export(source)
    assert not TROUBLE.search(output), output
    labels = upright(labels[..., None], 6)[..., 0]  # darktable honours the orientation tag
    assert pixels.shape[:2] == labels.shape
    _assert_neutral(_patch_mean(pixels, labels, GREY), "grey")
    clipped = _patch_mean(pixels, labels, CLIPPED)
    _assert_neutral(clipped, "clipped highlight")
    assert clipped.min() >= 250  # white, not magenta or grey
    # darktable applies an exposure but no tone curve to a LinearRaw DNG: in linear light the
    # orange keeps the hue the embedded ColorMatrix1 gives it (the sRGB fallback gives (3, 1, 0.5)).
    orange = srgb_decode(_patch_mean(pixels, labels, ORANGE) / 255)
    expected = camera_to_srgb_matrix(xyz_to_cam) @ np.array(PATCH_RGB[ORANGE])
    np.testing.assert_allclose(orange / orange[1], expected / expected[1], rtol=0.05)


def test_cfa_dng_opens(tmp_path, exif, xyz_to_cam, wb_gains):
    labels, balanced = _patches()
    camera_rgb = balanced / np.array(wb_gains, dtype=np.float32)
    black, white = 512, 16383
    cfa = np.round(black + mosaic_rgb(camera_rgb, "GRBG") * (white - black)).astype(np.uint16)
    source = write_cfa_dng(
        tmp_path / "mosaic.dng",
        cfa,
        "GRBG",
        black_level=black,
        white_level=white,
        xyz_to_cam=xyz_to_cam,
        wb_gains=wb_gains,
        exif=exif,
    )
    pixels, output = _export(source)
    assert not TROUBLE.search(output), output
    assert pixels.shape[:2] == labels.shape
    _assert_neutral(_patch_mean(pixels, labels, GREY), "grey")
    clipped = _patch_mean(pixels, labels, CLIPPED)
    _assert_neutral(clipped, "clipped highlight")
    assert clipped.min() >= 200  # filmic (on for real raws) maps the clip point below 255
