"""Picture outputs (16-bit TIFF, PNG, JPEG) and :func:`write_output`, which picks the writer.

TIFF, PNG and JPEG hold the neutral rendering (:func:`rddm.color.render_srgb`), turned upright:
viewers do not all honour an orientation tag, so none is written. The DNG keeps the stored
orientation and its tag, like the RAW it replaces.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import ImageCms

from rddm import __version__
from rddm.color import render_srgb, to_uint
from rddm.errors import OutputError
from rddm.io.atomic import atomic_write
from rddm.io.dng import write_linear_dng
from rddm.raw.cfa import ORIENTATION_TRANSFORMS, orient_mosaic
from rddm.raw.reader import ExifInfo

SUPPORTED_FORMATS: tuple[str, ...] = ("dng", "tiff", "png", "jpeg")
FORMAT_SUFFIXES: dict[str, str] = {"dng": ".dng", "tiff": ".tif", "png": ".png", "jpeg": ".jpg"}


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be (H, W, 3), got {image.shape}")
    return image


@functools.cache
def _srgb_icc_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def write_tiff16(path: str | os.PathLike, srgb: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write ``(H, W, 3)`` encoded sRGB in [0, 1] as a 16-bit RGB TIFF with an sRGB ICC profile."""
    pixels = to_uint(_check_image(srgb, "srgb"), 16)

    def write(temp: Path) -> None:
        tifffile.imwrite(
            temp,
            pixels,
            photometric="rgb",
            iccprofile=_srgb_icc_profile(),
            metadata=None,
            software=f"rddm {__version__}",
        )

    return atomic_write(path, write, overwrite=overwrite)


def _write_encoded(
    path: str | os.PathLike, pixels: np.ndarray, extension: str, params: list[int], overwrite: bool
) -> Path:
    # Encoding in memory first: a failure leaves no file, and OpenCV never sees the (maybe
    # non-ASCII) path, which its Windows build cannot open.
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(pixels[..., ::-1]), params)  # BGR
    if not ok:
        raise OutputError(f"{path}: OpenCV could not encode the image as {extension}")
    return atomic_write(path, encoded.tofile, overwrite=overwrite)


def write_png(path: str | os.PathLike, srgb: np.ndarray, *, bits: int = 8, overwrite: bool = False) -> Path:
    """Write ``(H, W, 3)`` encoded sRGB in [0, 1] as an 8- or 16-bit RGB PNG."""
    return _write_encoded(path, to_uint(_check_image(srgb, "srgb"), bits), ".png", [], overwrite)


def write_jpeg(
    path: str | os.PathLike, srgb: np.ndarray, *, quality: int = 95, overwrite: bool = False
) -> Path:
    """Write ``(H, W, 3)`` encoded sRGB in [0, 1] as a baseline JPEG of ``quality`` 1-100."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1-100, got {quality}")
    pixels = to_uint(_check_image(srgb, "srgb"), 8)
    return _write_encoded(path, pixels, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality], overwrite)


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``(H, W, C)`` image stored with EXIF ``orientation`` 1-8, turned as viewers show it."""
    # The same transforms that turn a mosaic upright; the pattern is irrelevant for RGB.
    turned, _ = orient_mosaic(np.moveaxis(image, -1, 0), "RGGB", orientation)
    return np.moveaxis(turned, 0, -1)


def _turn_region(region, transform: str, width: int, height: int):
    """``(x, y, w, h)`` in a ``width`` x ``height`` image -> (region, width, height) after ``transform``."""
    x, y, w, h = region
    if transform == "flip_h":
        return (width - x - w, y, w, h), width, height
    if transform == "flip_v":
        return (x, height - y - h, w, h), width, height
    if transform == "rot180":
        return (width - x - w, height - y - h, w, h), width, height
    if transform == "transpose":
        return (y, x, h, w), height, width
    if transform == "rot90":  # counter-clockwise
        return (y, width - x - w, h, w), height, width
    if transform == "rot270":  # clockwise
        return (height - y - h, x, h, w), height, width
    raise ValueError(f"unknown transform {transform!r}")


# The orientation that undoes each EXIF orientation (6 and 8 are quarter turns the other way).
_INVERSE_ORIENTATION = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def region_to_stored(
    region: tuple[int, int, int, int] | None, orientation: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """A region ``(x, y, w, h)`` of the upright picture as the same region of the stored pixels.

    ``width`` and ``height`` are the stored image's; None is the whole picture. Raises ValueError
    for an empty region or one that reaches outside the picture.
    """
    if orientation not in ORIENTATION_TRANSFORMS:
        raise ValueError(f"EXIF orientation must be 1-8, got {orientation}")
    turned = orientation in (5, 6, 7, 8)
    upright_width, upright_height = (height, width) if turned else (width, height)
    if region is None:
        region = (0, 0, upright_width, upright_height)
    x, y, w, h = (int(value) for value in region)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > upright_width or y + h > upright_height:
        raise ValueError(
            f"region x={x} y={y} width={w} height={h} is empty or outside the "
            f"{upright_width}x{upright_height} picture"
        )
    current = (x, y, w, h)
    size = (upright_width, upright_height)
    for transform in ORIENTATION_TRANSFORMS[_INVERSE_ORIENTATION[orientation]]:
        current, *size = _turn_region(current, transform, *size)
    return current


def write_output(
    path: str | os.PathLike,
    balanced_rgb: np.ndarray,
    fmt: str,
    *,
    wb_gains: Sequence[float],
    xyz_to_cam: np.ndarray,
    exif: ExifInfo | None = None,
    orientation: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write a restored image in one of :data:`SUPPORTED_FORMATS`.

    Args:
        path: the output file (see :data:`FORMAT_SUFFIXES` for the usual suffix).
        balanced_rgb: ``(H, W, 3)`` white-balanced linear camera RGB in [0, 1], as stored
            (not rotated).
        fmt: ``"dng"`` (LinearRaw DNG with all metadata) or ``"tiff"``, ``"png"``, ``"jpeg"``
            (the neutral sRGB rendering, upright, 16/8/8 bits, no EXIF).
        wb_gains: as-shot gains (R, G, B); only the DNG needs them (the pixels are balanced).
        xyz_to_cam: ``(3, 3)`` XYZ -> camera matrix.
        exif, orientation: shooting facts and EXIF orientation 1-8 of the stored pixels.
    """
    name = str(fmt).lower()
    if name not in SUPPORTED_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}: expected one of {', '.join(SUPPORTED_FORMATS)}")
    rgb = _check_image(balanced_rgb, "balanced_rgb")
    if name == "dng":
        return write_linear_dng(
            path,
            rgb,
            wb_gains=wb_gains,
            xyz_to_cam=xyz_to_cam,
            exif=exif,
            orientation=orientation,
            overwrite=overwrite,
        )
    srgb = render_srgb(upright(rgb, orientation), xyz_to_cam)
    if name == "tiff":
        return write_tiff16(path, srgb, overwrite=overwrite)
    if name == "png":
        return write_png(path, srgb, bits=8, overwrite=overwrite)
    return write_jpeg(path, srgb, overwrite=overwrite)
