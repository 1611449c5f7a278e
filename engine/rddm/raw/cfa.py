"""Bayer colour filter arrays: the four 2x2 patterns, packing into planes, and geometry.

A pattern is named by its top-left 2x2 block read row by row: ``"RGGB"`` means
R at (0, 0), G at (0, 1), G at (1, 0), B at (1, 1).

Packed planes always come in one canonical order, whatever the pattern:
``[R, Gr, Gb, B]`` where Gr is the green sharing rows with red and Gb the green sharing
rows with blue. A model therefore sees the same colour in the same plane for every sensor;
what still differs between patterns is the half-pixel spatial offset of each plane, which
is what the per-pattern CMB-LoRA adapters learn.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np

try:  # torch is optional for this module: packing also serves the numpy-only synthesis code
    import torch
except ImportError:  # pragma: no cover - exercised only without torch installed
    torch = None

CFA_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")
PLANE_ORDER: tuple[str, ...] = ("R", "Gr", "Gb", "B")

Array = TypeVar("Array")
Transform = Literal["flip_h", "flip_v", "rot90", "rot180", "rot270", "transpose"]

# EXIF orientation -> the transforms that bring the stored mosaic upright, applied in order.
ORIENTATION_TRANSFORMS: dict[int, tuple[Transform, ...]] = {
    1: (),
    2: ("flip_h",),
    3: ("rot180",),
    4: ("flip_v",),
    5: ("transpose",),
    6: ("rot270",),  # stored rotated 90 deg counter-clockwise: turn it clockwise
    7: ("rot90", "flip_h"),  # transverse
    8: ("rot90",),
}


def check_pattern(cfa_pattern: str) -> str:
    """Return the pattern in upper case, or raise ValueError for anything but the four Bayer ones."""
    name = str(cfa_pattern).upper()
    if name not in CFA_PATTERNS:
        raise ValueError(f"unknown CFA pattern {cfa_pattern!r}: expected one of {CFA_PATTERNS}")
    return name


def plane_offsets(cfa_pattern: str) -> list[tuple[int, int]]:
    """(row, column) of R, Gr, Gb, B inside the 2x2 block of ``cfa_pattern``."""
    name = check_pattern(cfa_pattern)
    positions = [(0, 0), (0, 1), (1, 0), (1, 1)]
    red = positions[name.index("R")]
    blue = positions[name.index("B")]
    green_red_row = (red[0], 1 - red[1])
    green_blue_row = (blue[0], 1 - blue[1])
    return [red, green_red_row, green_blue_row, blue]


def color_index_map(cfa_pattern: str) -> np.ndarray:
    """2x2 int array with the RGB channel (0, 1, 2) of each position of the pattern."""
    name = check_pattern(cfa_pattern)
    return np.array([["RGB".index(c) for c in name[:2]], ["RGB".index(c) for c in name[2:]]])


def _pad_to_even(mosaic: Array) -> Array:
    """Pad the last two axes to even sizes by mirroring, which keeps the CFA phase."""
    height, width = mosaic.shape[-2:]
    pad_rows, pad_cols = height % 2, width % 2
    if not (pad_rows or pad_cols):
        return mosaic
    if min(height, width) < 2:
        raise ValueError(f"mosaic of {height}x{width} is too small to pack (at least 2x2)")
    if torch is not None and isinstance(mosaic, torch.Tensor):
        flat = mosaic.reshape(-1, 1, height, width)
        padded = torch.nn.functional.pad(flat, (0, pad_cols, 0, pad_rows), mode="reflect")
        return padded.reshape(*mosaic.shape[:-2], height + pad_rows, width + pad_cols)
    pad = [(0, 0)] * (mosaic.ndim - 2) + [(0, pad_rows), (0, pad_cols)]
    return np.pad(mosaic, pad, mode="reflect")


def pack(mosaic: Array, cfa_pattern: str) -> Array:
    """Pack a Bayer mosaic into four half-resolution planes in the order R, Gr, Gb, B.

    Args:
        mosaic: ``(..., H, W)`` numpy array or torch tensor, any H and W >= 2. Odd sizes are padded
            by one mirrored row/column (same CFA colour), which :func:`unpack` removes again.
        cfa_pattern: one of ``RGGB``, ``BGGR``, ``GRBG``, ``GBRG``.

    Returns:
        ``(..., 4, ceil(H/2), ceil(W/2))`` of the same type and dtype.
    """
    even = _pad_to_even(mosaic)
    planes = [even[..., r::2, c::2] for r, c in plane_offsets(cfa_pattern)]
    if torch is not None and isinstance(mosaic, torch.Tensor):
        return torch.stack(planes, dim=-3)
    return np.stack(planes, axis=-3)


def balance_planes(planes: np.ndarray, wb_gains) -> np.ndarray:
    """Multiply ``(..., 4, h, w)`` packed planes by the white-balance gains (R, G, B) and clip to
    [0, 1]: the model's input, so it never has to guess the gains (the target is white-balanced)."""
    red, green, blue = (float(g) for g in wb_gains[:3])
    gains = np.array([red, green, green, blue], dtype=np.float32) / green
    return np.clip(planes * gains[:, None, None], 0.0, 1.0).astype(np.float32)


def unpack(planes: Array, cfa_pattern: str, height: int | None = None, width: int | None = None):
    """Inverse of :func:`pack`: ``(..., 4, h, w)`` planes to a ``(..., H, W)`` mosaic.

    ``height`` and ``width`` give the original size (default ``2h`` x ``2w``), so packing an odd-sized
    mosaic and unpacking it returns exactly the input.
    """
    if planes.shape[-3] != 4:
        raise ValueError(f"expected 4 planes on axis -3, got shape {tuple(planes.shape)}")
    h, w = planes.shape[-2:]
    height = 2 * h if height is None else height
    width = 2 * w if width is None else width
    if not (2 * h - 1 <= height <= 2 * h and 2 * w - 1 <= width <= 2 * w):
        raise ValueError(f"planes of {h}x{w} cannot unpack to a {height}x{width} mosaic")
    shape = (*planes.shape[:-3], 2 * h, 2 * w)
    if torch is not None and isinstance(planes, torch.Tensor):
        mosaic = planes.new_empty(shape)
    else:
        mosaic = np.empty(shape, dtype=planes.dtype)
    for index, (r, c) in enumerate(plane_offsets(cfa_pattern)):
        mosaic[..., r::2, c::2] = planes[..., index, :, :]
    return mosaic[..., :height, :width]


def mosaic_rgb(rgb: np.ndarray, cfa_pattern: str) -> np.ndarray:
    """Sample an ``(H, W, 3)`` image through the colour filter array: ``(H, W)`` mosaic."""
    height, width = rgb.shape[:2]
    channel = np.tile(color_index_map(cfa_pattern), ((height + 1) // 2, (width + 1) // 2))
    channel = channel[:height, :width]
    return np.take_along_axis(rgb, channel[..., None], axis=-1)[..., 0]


def pattern_after_crop(cfa_pattern: str, top: int, left: int) -> str:
    """The pattern of a crop whose top-left corner is at (``top``, ``left``) of the mosaic."""
    name = check_pattern(cfa_pattern)
    grid = [[name[0], name[1]], [name[2], name[3]]]
    return "".join(grid[(top + r) % 2][(left + c) % 2] for r in range(2) for c in range(2))


def _apply(array: np.ndarray, transform: Transform) -> np.ndarray:
    operations = {
        "flip_h": lambda a: a[..., :, ::-1],
        "flip_v": lambda a: a[..., ::-1, :],
        "rot90": lambda a: np.rot90(a, 1, axes=(-2, -1)),  # counter-clockwise
        "rot180": lambda a: np.rot90(a, 2, axes=(-2, -1)),
        "rot270": lambda a: np.rot90(a, 3, axes=(-2, -1)),
        "transpose": lambda a: np.swapaxes(a, -1, -2),
    }
    if transform not in operations:
        raise ValueError(f"unknown transform {transform!r}: expected one of {sorted(operations)}")
    return operations[transform](array)


def pattern_after_transform(cfa_pattern: str, transform: Transform, height: int, width: int) -> str:
    """The pattern of an ``height`` x ``width`` mosaic after a flip or rotation.

    The answer depends on the parity of the size: flipping an odd-width RGGB mosaic keeps RGGB,
    flipping an even-width one gives GRBG.
    """
    name = check_pattern(cfa_pattern)
    # A small label grid with the same parity as the image behaves exactly like the image.
    rows, cols = 2 + height % 2, 2 + width % 2
    labels = np.array([[name[(r % 2) * 2 + c % 2] for c in range(cols)] for r in range(rows)])
    moved = _apply(labels, transform)
    return "".join(moved[:2, :2].reshape(-1))


def transform_mosaic(mosaic: np.ndarray, cfa_pattern: str, transform: Transform):
    """Flip or rotate a ``(..., H, W)`` mosaic; returns ``(mosaic, new_cfa_pattern)``."""
    height, width = mosaic.shape[-2:]
    pattern = pattern_after_transform(cfa_pattern, transform, height, width)
    return np.ascontiguousarray(_apply(mosaic, transform)), pattern


def orient_mosaic(mosaic: np.ndarray, cfa_pattern: str, orientation: int):
    """Bring a mosaic stored with EXIF ``orientation`` (1-8) upright; returns (mosaic, pattern)."""
    if orientation not in ORIENTATION_TRANSFORMS:
        raise ValueError(f"EXIF orientation must be 1-8, got {orientation}")
    for transform in ORIENTATION_TRANSFORMS[orientation]:
        mosaic, cfa_pattern = transform_mosaic(mosaic, cfa_pattern, transform)
    return mosaic, cfa_pattern
