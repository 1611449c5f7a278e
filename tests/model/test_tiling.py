"""The tile grid: fewest tiles, shrunk to fit, every overlap kept, the same grid for any region."""

from __future__ import annotations

import pytest
import torch

from rddm.model.tiling import feather, tile_grid, tiles_touching


@pytest.mark.parametrize("length", [4, 100, 256, 257 + 3, 480, 481 + 3, 999 + 1, 2000, 3000, 5995 + 1])
@pytest.mark.parametrize("size, overlap", [(256, 32), (128, 64), (64, 0), (512, 32)])
def test_spans_cover_with_the_overlap_in_the_fewest_tiles(length, size, overlap):
    tiles = tile_grid(8, length, size, overlap, multiple=4)
    spans = [(t.left, t.width) for t in tiles]
    assert spans[0][0] == 0 and sum(spans[-1]) == length
    assert all(width <= size and width % 4 == 0 and left % 4 == 0 for left, width in spans)
    for (left, width), (following, _) in zip(spans, spans[1:], strict=False):
        assert left < following and left + width - following >= overlap
    fewest = 1 if length <= size else -(-(length - overlap) // (size - overlap))
    assert len(spans) == fewest


def test_fitted_tiles_cost_less_than_full_tiles_pushed_to_the_edge():
    """A 24 MP image (3000 x 2000 packed) in 256 / 32 tiles: 14 x 9 tiles of 244 x 252."""
    tiles = tile_grid(2000, 3000, 256, 32, multiple=4)
    assert len(tiles) == 126 and {(t.height, t.width) for t in tiles} == {(252, 244)}
    assert sum(t.height * t.width for t in tiles) / (126 * 256 * 256) < 0.94


def test_feather_weights_cover_every_pixel():
    height, width, overlap = 300, 520, 32
    tiles = tile_grid(height, width, 128, overlap, multiple=4)
    total = torch.zeros(2 * height, 2 * width)
    for tile in tiles:
        weight = feather(tile, height, width, overlap)
        total[2 * tile.top : 2 * tile.bottom, 2 * tile.left : 2 * tile.right] += weight
    assert float(total.min()) > 0.4  # ramps of unequal overlaps need not sum to 1; normalised later


def test_tiles_touching_a_region_are_those_it_overlaps():
    tiles = tile_grid(1000, 1000, 256, 32, multiple=4)
    touched = tiles_touching(tiles, 300, 300, 556, 556)
    assert touched and all(t.top < 556 and t.bottom > 300 and t.left < 556 and t.right > 300 for t in touched)
    assert len(touched) == sum(
        t.top < 556 and t.bottom > 300 and t.left < 556 and t.right > 300 for t in tiles
    )


def test_bad_tiling_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        tile_grid(100, 100, 64, 64)
    with pytest.raises(ValueError, match="multiples"):
        tile_grid(100, 100, 66, 32, multiple=4)
