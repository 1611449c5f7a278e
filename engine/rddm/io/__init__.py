"""Writers: LinearRaw and CFA DNG, 16-bit TIFF, PNG and JPEG, all written atomically."""

from rddm.io.atomic import atomic_write, next_free_path
from rddm.io.dng import write_cfa_dng, write_linear_dng
from rddm.io.images import (
    FORMAT_SUFFIXES,
    SUPPORTED_FORMATS,
    write_jpeg,
    write_output,
    write_png,
    write_tiff16,
)

__all__ = [
    "FORMAT_SUFFIXES",
    "SUPPORTED_FORMATS",
    "atomic_write",
    "next_free_path",
    "write_cfa_dng",
    "write_jpeg",
    "write_linear_dng",
    "write_output",
    "write_png",
    "write_tiff16",
]
