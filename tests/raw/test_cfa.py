"""Bayer packing and geometry: exact round trips and patterns that follow crops and flips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rddm.raw.cfa import (
    CFA_PATTERNS,
    mosaic_rgb,
    orient_mosaic,
    pack,
    pattern_after_crop,
    pattern_after_transform,
    transform_mosaic,
    unpack,
)

SIZES = [(8, 12), (7, 12), (8, 11), (9, 13), (2, 2), (3, 5)]


def _labelled_rgb(height: int, width: int) -> np.ndarray:
    """An RGB image whose every value says its channel and position (all distinct)."""
    rng = np.random.default_rng(height * 100 + width)
    return rng.uniform(size=(height, width, 3)).astype(np.float32)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("size", SIZES)
def test_pack_unpack_round_trip_is_exact(pattern, size):
    mosaic = np.random.default_rng(1).uniform(size=size).astype(np.float32)
    planes = pack(mosaic, pattern)
    assert planes.shape == (4, (size[0] + 1) // 2, (size[1] + 1) // 2)
    assert planes.dtype == np.float32
    np.testing.assert_array_equal(unpack(planes, pattern, *size), mosaic)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_planes_hold_r_gr_gb_b_for_every_pattern(pattern):
    rgb = _labelled_rgb(6, 8)
    planes = pack(mosaic_rgb(rgb, pattern), pattern)
    red_row = pattern.index("R") // 2
    # Plane 0 is red and plane 3 blue, wherever they sit in the 2x2 block.
    np.testing.assert_array_equal(planes[0], rgb[red_row::2, pattern.index("R") % 2 :: 2, 0])
    np.testing.assert_array_equal(planes[3], rgb[1 - red_row :: 2, pattern.index("B") % 2 :: 2, 2])
    # Gr shares rows with red, Gb with blue.
    np.testing.assert_array_equal(planes[1], rgb[red_row::2, 1 - pattern.index("R") % 2 :: 2, 1])
    np.testing.assert_array_equal(planes[2], rgb[1 - red_row :: 2, 1 - pattern.index("B") % 2 :: 2, 1])


def test_pack_works_on_torch_batches_and_keeps_gradients():
    mosaic = torch.rand(2, 3, 9, 14, requires_grad=True)
    planes = pack(mosaic, "GBRG")
    assert planes.shape == (2, 3, 4, 5, 7)
    back = unpack(planes, "GBRG", 9, 14)
    assert torch.equal(back, mosaic)
    back.sum().backward()
    assert mosaic.grad is not None and torch.all(mosaic.grad >= 1)


def test_unpack_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="4 planes"):
        unpack(np.zeros((3, 4, 4)), "RGGB")
    with pytest.raises(ValueError, match="cannot unpack"):
        unpack(np.zeros((4, 4, 4)), "RGGB", 5, 8)
    with pytest.raises(ValueError, match="unknown CFA pattern"):
        pack(np.zeros((4, 4)), "RGBG")


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("offset", [(0, 0), (0, 1), (1, 0), (1, 1), (3, 6)])
def test_pattern_after_crop_matches_the_cropped_mosaic(pattern, offset):
    rgb = _labelled_rgb(10, 10)
    cropped = mosaic_rgb(rgb, pattern)[offset[0] :, offset[1] :]
    expected = pattern_after_crop(pattern, *offset)
    np.testing.assert_array_equal(cropped, mosaic_rgb(rgb[offset[0] :, offset[1] :], expected))


TRANSFORMS = {
    "flip_h": lambda a: a[:, ::-1],
    "flip_v": lambda a: a[::-1],
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "transpose": lambda a: np.swapaxes(a, 0, 1),
}


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("size", [(6, 8), (7, 8), (6, 9), (7, 9)])
def test_transformed_mosaic_is_the_mosaic_of_the_transformed_image(pattern, transform, size):
    rgb = _labelled_rgb(*size)
    moved, new_pattern = transform_mosaic(mosaic_rgb(rgb, pattern), pattern, transform)
    assert new_pattern == pattern_after_transform(pattern, transform, *size)
    np.testing.assert_array_equal(moved, mosaic_rgb(TRANSFORMS[transform](rgb), new_pattern))


def test_even_flip_changes_pattern_but_odd_flip_keeps_it():
    assert pattern_after_transform("RGGB", "flip_h", 4, 4) == "GRBG"
    assert pattern_after_transform("RGGB", "flip_h", 4, 5) == "RGGB"
    assert pattern_after_transform("RGGB", "rot180", 4, 4) == "BGGR"


PIL_ORIENTATION = {
    2: Image.FLIP_LEFT_RIGHT,
    3: Image.ROTATE_180,
    4: Image.FLIP_TOP_BOTTOM,
    5: Image.TRANSPOSE,
    6: Image.ROTATE_270,
    7: Image.TRANSVERSE,
    8: Image.ROTATE_90,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillows_exif_transpose(orientation):
    mosaic = np.arange(35, dtype=np.uint8).reshape(5, 7)
    upright, pattern = orient_mosaic(mosaic, "GRBG", orientation)
    image = Image.fromarray(mosaic)
    if orientation in PIL_ORIENTATION:
        image = image.transpose(PIL_ORIENTATION[orientation])
    np.testing.assert_array_equal(upright, np.asarray(image))
    assert pattern in CFA_PATTERNS
    with pytest.raises(ValueError, match="1-8"):
        orient_mosaic(mosaic, "GRBG", 9)
