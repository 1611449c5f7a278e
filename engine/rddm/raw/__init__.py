"""Camera RAW input: reading through rawpy, Bayer patterns, packing and geometry."""

from rddm.raw.cfa import (
    CFA_PATTERNS,
    PLANE_ORDER,
    mosaic_rgb,
    orient_mosaic,
    pack,
    pattern_after_crop,
    pattern_after_transform,
    transform_mosaic,
    unpack,
)
from rddm.raw.reader import ExifInfo, RawImage, read_raw

__all__ = [
    "CFA_PATTERNS",
    "PLANE_ORDER",
    "ExifInfo",
    "RawImage",
    "mosaic_rgb",
    "orient_mosaic",
    "pack",
    "pattern_after_crop",
    "pattern_after_transform",
    "read_raw",
    "transform_mosaic",
    "unpack",
]
