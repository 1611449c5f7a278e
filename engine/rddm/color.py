"""Colour conventions shared by reading, synthesis, writers and evaluation.

The *neutral rendering* is rddm's one documented way from linear camera RGB to an sRGB picture,
used for previews, PNG/JPEG/TIFF output and every quality figure:

1. white balance with the as-shot gains (normalised so green = 1), clip to [0, 1]
   (so clipped highlights stay neutral white, never magenta);
2. camera RGB -> linear sRGB with the inverse of ``cam_rgb = xyz_to_cam @ srgb_to_xyz(D65)``
   whose rows are normalised to sum 1 (dcraw/LibRaw convention: white stays white);
3. clip to [0, 1] and apply the sRGB transfer curve. No tone curve, no exposure change.

Steps 2-3 alone are :func:`render_srgb`; the HQ targets of :mod:`rddm.synth` and the model's
output are already white-balanced, so they start at step 2.
"""

from __future__ import annotations

import numpy as np

# IEC 61966-2-1 linear sRGB -> CIE XYZ, D65 white.
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)

# A camera whose native primaries are sRGB's: the fallback when a file carries no colour matrix.
DEFAULT_XYZ_TO_CAM = np.linalg.inv(SRGB_TO_XYZ)


def srgb_to_camera_matrix(xyz_to_cam: np.ndarray) -> np.ndarray:
    """``(3, 3)`` matrix from linear sRGB to white-balanced camera RGB (rows sum to 1)."""
    cam_rgb = np.asarray(xyz_to_cam, dtype=np.float64)[:3, :3] @ SRGB_TO_XYZ
    row_sums = cam_rgb.sum(axis=1, keepdims=True)
    if np.any(np.abs(row_sums) < 1e-8):
        raise ValueError("colour matrix has a row that maps white to zero")
    return cam_rgb / row_sums


def camera_to_srgb_matrix(xyz_to_cam: np.ndarray) -> np.ndarray:
    """``(3, 3)`` matrix from white-balanced camera RGB to linear sRGB (inverse of the above)."""
    return np.linalg.inv(srgb_to_camera_matrix(xyz_to_cam))


def _clipped_copy(values) -> np.ndarray:
    """``values`` clipped to [0, 1] in a new array of their float type (float32 at least), for the
    transfer curves to work in place: the same numbers as a computation with temporaries."""
    values = np.asarray(values)
    return np.asarray(np.clip(values, 0.0, 1.0), dtype=np.result_type(values.dtype, np.float32))


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB transfer curve (OETF): linear [0, 1] -> encoded [0, 1]."""
    encoded = _clipped_copy(linear)
    dark = encoded <= 0.0031308
    toe = 12.92 * encoded[dark]
    np.power(encoded, 1 / 2.4, out=encoded)
    encoded *= 1.055
    encoded -= 0.055
    encoded[dark] = toe
    return encoded.astype(np.float32, copy=False)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer curve: encoded [0, 1] -> linear [0, 1]."""
    linear = _clipped_copy(encoded)
    dark = linear <= 0.04045
    toe = linear[dark] / 12.92
    linear += 0.055
    linear /= 1.055
    np.power(linear, 2.4, out=linear)
    linear[dark] = toe
    return linear.astype(np.float32, copy=False)


def normalize_wb_gains(wb_gains) -> np.ndarray:
    """Gains (R, G, B) scaled so that green = 1; raises ValueError for unusable gains."""
    gains = np.asarray(wb_gains, dtype=np.float64)[:3]
    if not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise ValueError(f"white-balance gains must be positive, got {gains.tolist()}")
    return gains / gains[1]


def white_balance(camera_rgb: np.ndarray, wb_gains) -> np.ndarray:
    """``(..., 3)`` linear camera RGB times the gains, clipped to [0, 1] (neutral highlights)."""
    gains = normalize_wb_gains(wb_gains).astype(np.float32)
    return np.clip(camera_rgb * gains, 0.0, 1.0).astype(np.float32)


def render_srgb(balanced_rgb: np.ndarray, xyz_to_cam: np.ndarray) -> np.ndarray:
    """Neutral rendering of ``(..., 3)`` white-balanced linear camera RGB: encoded sRGB in [0, 1]."""
    matrix = camera_to_srgb_matrix(xyz_to_cam).astype(np.float32)
    linear_srgb = np.asarray(balanced_rgb, dtype=np.float32) @ matrix.T
    return srgb_encode(linear_srgb)


def to_uint(image: np.ndarray, bits: int) -> np.ndarray:
    """Quantise [0, 1] floats to unsigned integers of 8 or 16 bits, rounding to nearest."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    top = (1 << bits) - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.round(np.clip(image, 0.0, 1.0) * top).astype(dtype)
