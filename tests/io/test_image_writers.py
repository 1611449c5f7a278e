"""TIFF, PNG and JPEG writers and write_output's dispatch, orientation and file names."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from rddm.color import render_srgb, to_uint
from rddm.io import (
    FORMAT_SUFFIXES,
    SUPPORTED_FORMATS,
    write_jpeg,
    write_output,
    write_png,
    write_tiff16,
)


@pytest.fixture
def srgb() -> np.ndarray:
    """(20, 30, 3) encoded sRGB in [0, 1], a different value everywhere."""
    yy, xx = np.mgrid[0:20, 0:30].astype(np.float32)
    return np.stack([xx / 29, yy / 19, (xx + yy) / 48], axis=-1)


def _read_png(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]  # OpenCV reads BGR


def test_tiff16_has_16_bits_and_an_srgb_profile(tmp_path, srgb):
    path = write_tiff16(tmp_path / "out.tif", srgb)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        pixels = page.asarray()
        icc = page.tags["InterColorProfile"].value
        assert "Orientation" not in page.tags
    assert page.photometric == tifffile.PHOTOMETRIC.RGB and pixels.dtype == np.uint16
    np.testing.assert_array_equal(pixels, to_uint(srgb, 16))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(bytes(icc)))
    assert "sRGB" in ImageCms.getProfileDescription(profile)


@pytest.mark.parametrize("bits", [8, 16])
def test_png_bits_and_values(tmp_path, srgb, bits):
    pixels = _read_png(write_png(tmp_path / "out.png", srgb, bits=bits))
    assert pixels.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(pixels, to_uint(srgb, bits))


def test_jpeg_size_and_quality(tmp_path, srgb):
    with Image.open(write_jpeg(tmp_path / "out.jpg", srgb, quality=95)) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (30, 20)
        assert not image.getexif()  # no orientation tag: the pixels are upright
        pixels = np.asarray(image, dtype=np.float32)
    assert np.abs(pixels - to_uint(srgb, 8)).mean() < 2
    with pytest.raises(ValueError, match="quality"):
        write_jpeg(tmp_path / "bad.jpg", srgb, quality=0)


def test_write_output_renders_neutrally(tmp_path, xyz_to_cam, wb_gains):
    balanced = np.random.default_rng(2).random((12, 16, 3), dtype=np.float32)
    path = write_output(tmp_path / "out.png", balanced, "png", wb_gains=wb_gains, xyz_to_cam=xyz_to_cam)
    np.testing.assert_array_equal(_read_png(path), to_uint(render_srgb(balanced, xyz_to_cam), 8))


@pytest.mark.parametrize("fmt", ["tiff", "png", "jpeg"])
def test_orientation_6_turns_pictures_upright(tmp_path, xyz_to_cam, wb_gains, fmt):
    balanced = np.zeros((40, 60, 3), dtype=np.float32)
    balanced[:10, :10] = 1.0  # white marker at the stored top-left
    path = write_output(
        tmp_path / f"out{FORMAT_SUFFIXES[fmt]}",
        balanced,
        fmt,
        wb_gains=wb_gains,
        xyz_to_cam=xyz_to_cam,
        orientation=6,
    )
    pixels = tifffile.imread(path) if fmt == "tiff" else np.asarray(Image.open(path))
    assert pixels.shape[:2] == (60, 40)
    # Orientation 6 is shown turned 90 degrees clockwise: the stored top-left goes top-right.
    assert pixels[:10, -10:].min() > 0.9 * pixels.max() and pixels[:, :28].max() < 0.1 * pixels.max()


def test_dng_keeps_orientation_as_a_tag(tmp_path, xyz_to_cam, wb_gains):
    balanced = np.zeros((40, 60, 3), dtype=np.float32)
    path = write_output(
        tmp_path / "out.dng",
        balanced,
        "dng",
        wb_gains=wb_gains,
        xyz_to_cam=xyz_to_cam,
        orientation=6,
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].shape == (40, 60, 3)
        assert tif.pages[0].tags["Orientation"].value == 6


def test_unknown_format(tmp_path, xyz_to_cam, wb_gains):
    with pytest.raises(ValueError, match="expected one of dng, tiff, png, jpeg"):
        write_output(
            tmp_path / "out.webp",
            np.zeros((4, 4, 3)),
            "webp",
            wb_gains=wb_gains,
            xyz_to_cam=xyz_to_cam,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["with space", 'it\'s "quoted"', "façade_夜景", "-dash $HOME"])
@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_awkward_file_names(tmp_path, xyz_to_cam, wb_gains, name, fmt):
    folder = tmp_path / name
    folder.mkdir()
    path = folder / f"{name}{FORMAT_SUFFIXES[fmt]}"
    balanced = np.full((24, 24, 3), 0.5, dtype=np.float32)
    assert write_output(path, balanced, fmt, wb_gains=wb_gains, xyz_to_cam=xyz_to_cam) == path
    assert sorted(p.name for p in folder.iterdir()) == [path.name]
    assert _pixel_size(path) == (24, 24)


def _pixel_size(path) -> tuple[int, int]:
    if path.suffix in (".dng", ".tif"):
        with tifffile.TiffFile(path) as tif:
            return tif.pages[0].shape[:2]
    with Image.open(path) as image:
        return image.size[::-1]
