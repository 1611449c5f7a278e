"""CFA and LinearRaw DNGs: what rawpy, read_raw, tifffile and exifread read back."""

from __future__ import annotations

import exifread
import numpy as np
import pytest
import rawpy
import tifffile

from rddm.errors import LinearRawError
from rddm.io import write_cfa_dng, write_linear_dng
from rddm.raw import CFA_PATTERNS, read_raw

BLACK = (512, 514, 516, 518)  # different per 2x2 position, so a misplaced level shows
WHITE = 16383


def _mosaic(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(400, WHITE + 1, shape, dtype=np.uint16)


@pytest.mark.parametrize("shape", [(32, 48), (31, 45)])
@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_cfa_dng_round_trip(tmp_path, exif, xyz_to_cam, wb_gains, pattern, shape):
    cfa = _mosaic(shape)
    path = write_cfa_dng(
        tmp_path / "mosaic.dng",
        cfa,
        pattern,
        black_level=BLACK,
        white_level=WHITE,
        xyz_to_cam=xyz_to_cam,
        wb_gains=wb_gains,
        exif=exif,
        orientation=6,
    )
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, cfa)
        colours = raw.color_desc.decode()
        assert "".join(colours[i] for i in raw.raw_pattern.reshape(-1)) == pattern

    image = read_raw(path)
    assert image.cfa_pattern == pattern
    assert image.black_level == BLACK and image.white_level == WHITE
    np.testing.assert_allclose(image.wb_gains, wb_gains, rtol=1e-6)
    assert image.color_matrix_source == "dng"
    np.testing.assert_allclose(image.xyz_to_cam, xyz_to_cam, atol=1e-6)
    assert image.orientation == 6
    black_map = np.tile(np.reshape(BLACK, (2, 2)), (shape[0] // 2 + 1, shape[1] // 2 + 1))
    black_map = black_map[: shape[0], : shape[1]]
    expected = np.clip((cfa - black_map) / (WHITE - black_map), 0, 1)
    np.testing.assert_allclose(image.cfa, expected, atol=1e-6)
    assert (image.exif.make, image.exif.model) == ("Rddmtest", "Synthetic One")
    assert image.exif.iso == 800 and image.exif.f_number == 2.8 and image.exif.focal_length == 50
    assert image.exif.exposure_time == pytest.approx(1 / 250)
    assert image.exif.lens == "Test Lens 50mm F2.8"
    assert image.exif.datetime == "2024:05:06 07:08:09"


def test_cfa_dng_rejects_what_it_cannot_write(tmp_path, xyz_to_cam, wb_gains):
    good = {"black_level": 512, "white_level": WHITE, "xyz_to_cam": xyz_to_cam, "wb_gains": wb_gains}
    cfa = _mosaic((8, 8))
    with pytest.raises(ValueError, match="uint16"):
        write_cfa_dng(tmp_path / "a.dng", cfa.astype(np.float32), "RGGB", **good)
    with pytest.raises(ValueError, match="unknown CFA pattern"):
        write_cfa_dng(tmp_path / "a.dng", cfa, "RGBG", **good)
    with pytest.raises(ValueError, match="black"):
        write_cfa_dng(tmp_path / "a.dng", cfa, "RGGB", **{**good, "black_level": WHITE})
    with pytest.raises(ValueError, match="orientation"):
        write_cfa_dng(tmp_path / "a.dng", cfa, "RGGB", orientation=9, **good)
    assert list(tmp_path.iterdir()) == []


def _balanced_image(height: int = 24, width: int = 32) -> np.ndarray:
    rgb = np.random.default_rng(1).random((height, width, 3), dtype=np.float32)
    rgb[:4, :4] = 1.0  # a clipped highlight
    return rgb


def test_linear_dng_tags_and_values(tmp_path, exif, xyz_to_cam, wb_gains):
    balanced = _balanced_image()
    path = write_linear_dng(
        tmp_path / "restored.dng",
        balanced,
        wb_gains=(4.0, 2.0, 3.0),  # scaled gains: green = 1
        xyz_to_cam=xyz_to_cam,
        exif=exif,
        orientation=8,
    )
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tags = {tag.name: tag.value for tag in page.tags}
        stored = page.asarray()
    assert page.photometric == 34892 and page.samplesperpixel == 3
    assert stored.dtype == np.uint16 and stored.shape == balanced.shape
    expected = balanced / np.array(wb_gains, dtype=np.float32) * 65535
    assert np.abs(stored - expected).max() <= 1  # camera RGB again: balanced / gains
    np.testing.assert_array_equal(stored[0, 0], np.round(65535 / np.array(wb_gains)))
    assert tags["DNGVersion"] == bytes([1, 4, 0, 0])
    assert tags["DNGBackwardVersion"] == bytes([1, 1, 0, 0])
    assert tags["UniqueCameraModel"] == "Rddmtest Synthetic One"
    assert tags["Make"] == "Rddmtest" and tags["Orientation"] == 8
    assert tags["WhiteLevel"] == (65535, 65535, 65535)
    assert [n / d for n, d in np.reshape(tags["BlackLevel"], (3, 2))] == [0, 0, 0]
    neutral = np.reshape(tags["AsShotNeutral"], (3, 2))
    np.testing.assert_allclose(neutral[:, 0] / neutral[:, 1], [0.5, 1.0, 2 / 3], rtol=1e-9)
    matrix = np.reshape(tags["ColorMatrix1"], (9, 2))
    np.testing.assert_allclose(matrix[:, 0] / matrix[:, 1], xyz_to_cam.ravel(), atol=1e-9)
    assert tags["CalibrationIlluminant1"] == 21  # D65


def test_linear_dng_exif_sub_ifd(tmp_path, exif, xyz_to_cam, wb_gains):
    path = write_linear_dng(
        tmp_path / "restored.dng",
        _balanced_image(),
        wb_gains=wb_gains,
        xyz_to_cam=xyz_to_cam,
        exif=exif,
    )
    with open(path, "rb") as handle:
        tags = {name: str(value) for name, value in exifread.process_file(handle).items()}
    assert tags["EXIF ISOSpeedRatings"] == "800"
    assert tags["EXIF ExposureTime"] == "1/250"
    assert tags["EXIF FNumber"] == "14/5"
    assert tags["EXIF FocalLength"] == "50"
    assert tags["EXIF LensModel"] == "Test Lens 50mm F2.8"
    assert tags["EXIF DateTimeOriginal"] == "2024:05:06 07:08:09"


def test_linear_dng_without_exif_still_names_a_camera(tmp_path, xyz_to_cam, wb_gains):
    path = write_linear_dng(
        tmp_path / "restored.dng", _balanced_image(), wb_gains=wb_gains, xyz_to_cam=xyz_to_cam
    )
    with tifffile.TiffFile(path) as tif:
        tags = {tag.name: tag.value for tag in tif.pages[0].tags}
    assert (tags["Make"], tags["Model"]) == ("rddm", "unknown camera")  # rawspeed needs a Make
    assert "ExifTag" not in tags


def test_read_raw_refuses_a_linear_dng(tmp_path, xyz_to_cam, wb_gains):
    # LibRaw opens LinearRaw DNGs of at least 22x22 pixels as a 3-channel "stack" image.
    path = write_linear_dng(
        tmp_path / "restored.dng", _balanced_image(), wb_gains=wb_gains, xyz_to_cam=xyz_to_cam
    )
    with pytest.raises(LinearRawError, match="already demosaiced"):
        read_raw(path)
