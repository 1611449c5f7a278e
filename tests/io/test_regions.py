"""Regions of the upright picture mapped to the stored pixels, for all EXIF orientations."""

from __future__ import annotations

import numpy as np
import pytest

from rddm.io.images import region_to_stored, upright


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("height,width", [(5, 7), (6, 4)])
def test_region_to_stored_matches_upright(orientation, height, width):
    stored = np.arange(height * width).reshape(height, width, 1)
    shown = upright(stored, orientation)
    rng = np.random.default_rng(orientation)
    for _ in range(40):
        x, y = rng.integers(0, shown.shape[1]), rng.integers(0, shown.shape[0])
        w, h = rng.integers(1, shown.shape[1] - x + 1), rng.integers(1, shown.shape[0] - y + 1)
        sx, sy, sw, sh = region_to_stored((x, y, w, h), orientation, width, height)
        np.testing.assert_array_equal(
            np.sort(shown[y : y + h, x : x + w].ravel()), np.sort(stored[sy : sy + sh, sx : sx + sw].ravel())
        )
        assert (sw, sh) == ((h, w) if orientation >= 5 else (w, h))


def test_whole_picture_and_bad_regions():
    assert region_to_stored(None, 6, 7, 5) == (0, 0, 7, 5)
    with pytest.raises(ValueError, match="outside the 5x7 picture"):
        region_to_stored((0, 0, 7, 5), 6, 7, 5)
    with pytest.raises(ValueError, match="empty"):
        region_to_stored((1, 1, 0, 2), 1, 7, 5)
    with pytest.raises(ValueError, match="orientation must be 1-8"):
        region_to_stored(None, 9, 7, 5)
