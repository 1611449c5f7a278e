"""Tiles over the packed mosaic and their feathered blending weights.

The grid depends only on the image size and the tile settings, never on the region asked for:
a region-of-interest restore runs exactly the tiles of the full restore that touch the region,
with the same weights, so its pixels are the full restore's pixels.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class Tile:
    """A tile in packed (half-resolution) coordinates: rows ``top:top+size``, columns ``left:left+size``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width


def _spans(length: int, size: int, overlap: int, multiple: int) -> list[tuple[int, int]]:
    """(start, size) of the tiles along one axis: as few tiles of at most ``size`` as cover
    ``length`` with ``overlap``, shrunk to the smallest multiple of ``multiple`` that still does,
    and spread evenly (every overlap at least ``overlap``; the last tile ends at ``length``)."""
    if length <= size:
        return [(0, length)]
    count = -(-(length - overlap) // (size - overlap))
    fitted = -(-(length + (count - 1) * overlap) // (count * multiple)) * multiple
    stride = -(-(length - fitted) // ((count - 1) * multiple)) * multiple
    starts = sorted({min(index * stride, length - fitted) for index in range(count)})
    return [(start, fitted) for start in starts]


def tile_grid(height: int, width: int, size: int, overlap: int, multiple: int = 1) -> list[Tile]:
    """Tiles of at most ``size`` x ``size`` covering a ``height`` x ``width`` packed image,
    overlapping by at least ``overlap``; sizes are multiples of ``multiple`` when the image's are.

    Each axis gets the fewest tiles that can cover it, shrunk to fit (see :func:`_spans`): a 24 MP
    image (3000 x 2000 packed) in tiles of 256 overlapping by 32 runs 14 x 9 tiles of 244 x 252
    with ``multiple`` 4, 248 x 256 with 8 (rddm-tiny's, see ``RDDMPipeline.tile_multiple``), 6%
    and 3% fewer pixels through the model than 256 x 256 tiles with the last row and column
    pushed back to the edges.
    """
    if not 0 <= overlap < size:
        raise ValueError(f"tile overlap {overlap} must be in [0, tile size {size})")
    if size % multiple or overlap % multiple:
        raise ValueError(f"tile size {size} and overlap {overlap} must be multiples of {multiple}")
    return [
        Tile(top, left, tile_height, tile_width)
        for top, tile_height in _spans(height, size, overlap, multiple)
        for left, tile_width in _spans(width, size, overlap, multiple)
    ]


def _ramp(length: int, overlap: int, guard: int, fade_start: bool, fade_end: bool) -> torch.Tensor:
    """1 inside; at edges shared with another tile, 0 over the outer ``guard`` samples, then rising
    linearly over the rest of the ``overlap`` (the neighbour's weights are the mirror image, so the
    two always sum to 1)."""
    ramp = torch.ones(length)
    if overlap > 0:
        rise = ((torch.arange(overlap, dtype=torch.float32) - guard + 0.5) / (overlap - 2 * guard)).clamp(
            0, 1
        )
        if fade_start:
            ramp[:overlap] = torch.minimum(ramp[:overlap], rise)
        if fade_end:
            ramp[-overlap:] = torch.minimum(ramp[-overlap:], rise.flip(0))
    return ramp


def guard_band(overlap: int) -> int:
    """Packed pixels at a shared tile edge that get no weight at all: a quarter of the overlap.

    A tile's outermost pixels lack the context beyond the tile that the whole image gives them,
    and a trained model reads far (rddm-tiny's encoder and decoder each see ~40 packed pixels):
    on ``DSC_1339`` with tiles of 128 overlapping by 64, a plain ramp left the tiled restore up to
    1.9e-3 from the whole image, these 16 pixels left out 1.6e-4 (``make tile-error``).
    """
    return overlap // 4


def feather(tile: Tile, height: int, width: int, overlap: int, scale: int = 2) -> torch.Tensor:
    """``(tile.height * scale, tile.width * scale)`` blending weights of a tile at output scale."""
    guard = guard_band(overlap) * scale
    rows = _ramp(tile.height * scale, overlap * scale, guard, tile.top > 0, tile.top + tile.height < height)
    cols = _ramp(tile.width * scale, overlap * scale, guard, tile.left > 0, tile.left + tile.width < width)
    return rows[:, None] * cols[None, :]


def tiles_touching(tiles: list[Tile], top: int, left: int, bottom: int, right: int) -> list[Tile]:
    """The tiles that overlap the packed region ``[top, bottom) x [left, right)``."""
    return [
        t
        for t in tiles
        if t.top < bottom and t.top + t.height > top and t.left < right and t.left + t.width > left
    ]
