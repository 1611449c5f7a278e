"""DNG writers: a Bayer CFA mosaic and a demosaiced LinearRaw image, uncompressed, one strip.

Camera and colour tags go into IFD0; the shooting facts (exposure, aperture, ISO, focal length,
date, lens) into an EXIF sub-IFD, the one place that exiv2 (so darktable), LibRaw and exifread all
read every one of them (exiv2 drops LensModel and LibRaw ignores ISO in IFD0). tifffile cannot
write a sub-IFD, so it is appended after tifffile has written the file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from rddm import __version__
from rddm.color import normalize_wb_gains, to_uint
from rddm.io.atomic import atomic_write
from rddm.raw.cfa import check_pattern, color_index_map
from rddm.raw.reader import ExifInfo

# TIFF field types.
_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL = 1, 2, 3, 4, 5, 7, 10
_PHOTOMETRIC_CFA = 32803
_PHOTOMETRIC_LINEAR_RAW = 34892
_ILLUMINANT_D65 = 21
_DNG_VERSION = (1, 4, 0, 0)
_DNG_BACKWARD_VERSION = (1, 1, 0, 0)  # nothing here needs a reader newer than DNG 1.1
_EXIF_IFD = 34665
# tifffile refuses to write ExifTag itself: IFD0 gets this code, the one just below (so the same
# place in the sorted IFD), and the entry is renamed once the EXIF IFD exists.
_EXIF_PLACEHOLDER = _EXIF_IFD - 1

# (code, field type, count, value, write once): what tifffile.imwrite takes as ``extratags``.
Tag = tuple[int, int, int, Any, bool]
# (code, field type, count, little-endian value bytes): an entry of the EXIF IFD written here.
Entry = tuple[int, int, int, bytes]

# ExifInfo attribute -> tag in the EXIF sub-IFD.
_EXIF_TEXT = {"datetime": 36867, "lens": 42036}  # DateTimeOriginal, LensModel
_EXIF_RATIONAL = {"exposure_time": 33434, "f_number": 33437, "focal_length": 37386}
_ISO_SPEED = 34855


def _rationals(values: Any) -> list[int]:
    """Numerator, denominator pairs, flattened as tifffile wants (S)RATIONAL values."""
    pairs: list[int] = []
    for value in np.ravel(np.asarray(values, dtype=np.float64)):
        fraction = Fraction(float(value)).limit_denominator(1_000_000)
        pairs += [fraction.numerator, fraction.denominator]
    return pairs


def _text(code: int, text: str) -> Tag:
    # Real lens and camera names are ASCII; UTF-8 bytes keep the rare exception readable.
    return (code, _ASCII, 0, text.encode("utf-8"), True)


def _exif_entries(exif: ExifInfo | None) -> list[Entry]:
    """The shooting facts of ``exif`` as EXIF sub-IFD entries, sorted (empty when there are none)."""
    entries: list[Entry] = []
    for name, code in _EXIF_TEXT.items():
        if text := getattr(exif, name, None):
            value = text.encode("utf-8") + b"\0"
            entries.append((code, _ASCII, len(value), value))
    for name, code in _EXIF_RATIONAL.items():
        if number := getattr(exif, name, None):
            entries.append((code, _RATIONAL, 1, struct.pack("<2I", *_rationals(number))))
    if iso := getattr(exif, "iso", None):
        entries.append((_ISO_SPEED, _SHORT, 1, struct.pack("<H", min(round(iso), 65535))))
    if entries:
        entries.append((36864, _UNDEFINED, 4, b"0231"))  # ExifVersion 2.31
    return sorted(entries)


def _ifd_bytes(entries: list[Entry], start: int) -> bytes:
    """A little-endian TIFF IFD of (sorted) ``entries`` and their values, for file offset ``start``."""
    values_start = start + 2 + 12 * len(entries) + 4
    table, values = [struct.pack("<H", len(entries))], b""
    for code, field_type, count, value in entries:
        if len(value) <= 4:
            field = value.ljust(4, b"\0")
        else:
            field = struct.pack("<I", values_start + len(values))
            values += value + b"\0" * (len(value) % 2)  # values start on word boundaries
        table.append(struct.pack("<HHI", code, field_type, count) + field)
    table.append(struct.pack("<I", 0))  # no next IFD
    return b"".join(table) + values


def _append_exif_ifd(path: Path, entries: list[Entry]) -> None:
    """Write the EXIF IFD at the end of the file and turn IFD0's placeholder into its ExifTag."""
    with tifffile.TiffFile(path, mode="r+") as tif:
        placeholder = tif.pages[0].tags[_EXIF_PLACEHOLDER]
        handle = tif.filehandle
        handle.seek(0, os.SEEK_END)
        start = handle.tell() + handle.tell() % 2
        handle.write(b"\0" * (start - handle.tell()) + _ifd_bytes(entries, start))
        handle.seek(placeholder.offset)
        handle.write(struct.pack("<HHII", _EXIF_IFD, _LONG, 1, start))


def _camera_tags(exif: ExifInfo) -> list[Tag]:
    """Make, Model and UniqueCameraModel; rawspeed (darktable) rejects a DNG without Make."""
    make, model = exif.make or "rddm", exif.model or "unknown camera"
    unique = model if model.startswith(make) else f"{make} {model}"
    return [_text(271, make), _text(272, model), _text(50708, unique)]


def metadata_tags(
    *, wb_gains: Sequence[float], xyz_to_cam: np.ndarray, exif: ExifInfo | None, orientation: int
) -> list[Tag]:
    """The IFD0 tags both DNG writers share: version, camera, orientation and colour.

    Args:
        wb_gains: as-shot white-balance multipliers (R, G, B), any scale; written as
            AsShotNeutral = 1 / gains with green = 1.
        xyz_to_cam: ``(3, 3)`` XYZ -> camera matrix, written as ColorMatrix1 calibrated for D65.
        exif: shooting facts, or None.
        orientation: EXIF orientation 1-8.
    """
    if orientation not in range(1, 9):
        raise ValueError(f"EXIF orientation must be 1-8, got {orientation}")
    exif = exif or ExifInfo()
    matrix = np.asarray(xyz_to_cam, dtype=np.float64)[:3, :3]
    return [
        (50706, _BYTE, 4, _DNG_VERSION, True),  # DNGVersion
        (50707, _BYTE, 4, _DNG_BACKWARD_VERSION, True),  # DNGBackwardVersion
        *_camera_tags(exif),
        (274, _SHORT, 1, orientation, True),  # Orientation
        (50721, _SRATIONAL, 9, _rationals(matrix), True),  # ColorMatrix1
        (50778, _SHORT, 1, _ILLUMINANT_D65, True),  # CalibrationIlluminant1
        (50728, _RATIONAL, 3, _rationals(1 / normalize_wb_gains(wb_gains)), True),  # AsShotNeutral
    ]


def _level_tags(black_levels: Sequence[float], white_levels: Sequence[int]) -> list[Tag]:
    return [
        (50714, _RATIONAL, len(black_levels), _rationals(black_levels), True),  # BlackLevel
        (50717, _LONG, len(white_levels), [int(w) for w in white_levels], True),  # WhiteLevel
    ]


def _write_dng(
    path: str | os.PathLike,
    image: np.ndarray,
    photometric: int,
    tags: list[Tag],
    exif: ExifInfo | None,
    overwrite: bool,
) -> Path:
    shooting_facts = _exif_entries(exif)
    placeholder = [(_EXIF_PLACEHOLDER, _LONG, 1, 0, True)] if shooting_facts else []

    def write(temp: Path) -> None:
        tifffile.imwrite(
            temp,
            image,
            byteorder="<",  # the EXIF IFD is packed little-endian too
            photometric=photometric,
            planarconfig="contig" if image.ndim == 3 else None,
            subfiletype=0,  # the main (raw) image, as DNG readers look for it
            metadata=None,  # no tifffile JSON description
            software=f"rddm {__version__}",
            extratags=tags + placeholder,
        )
        if shooting_facts:
            _append_exif_ifd(temp, shooting_facts)

    return atomic_write(path, write, overwrite=overwrite)


def write_cfa_dng(
    path: str | os.PathLike,
    cfa: np.ndarray,
    cfa_pattern: str,
    *,
    black_level: float | Sequence[float],
    white_level: int,
    xyz_to_cam: np.ndarray,
    wb_gains: Sequence[float],
    exif: ExifInfo | None = None,
    orientation: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write a Bayer mosaic as a CFA DNG that LibRaw, rawspeed (darktable) and rddm read back.

    Args:
        path: the output file; see :func:`~rddm.io.atomic.atomic_write` for ``overwrite``.
        cfa: ``(H, W)`` uint16 raw values, black level not subtracted, as stored (not rotated).
        cfa_pattern: ``"RGGB" | "BGGR" | "GRBG" | "GBRG"``, the colours of ``cfa[:2, :2]``.
        black_level: raw units, one value or one per 2x2 position row by row.
        white_level: saturation in raw units, above every black level, at most 65535.
        xyz_to_cam, wb_gains, exif, orientation: see :func:`metadata_tags`.
    """
    cfa = np.asarray(cfa)
    if cfa.ndim != 2 or cfa.dtype != np.uint16:
        raise ValueError(f"cfa must be a (H, W) uint16 array, got {cfa.dtype} {cfa.shape}")
    black = np.broadcast_to(np.asarray(black_level, dtype=np.float64).reshape(-1), (4,))
    if black.min() < 0 or not black.max() < white_level <= 65535:
        raise ValueError(f"need 0 <= black {black.tolist()} < white {white_level} <= 65535")
    colour_indices = color_index_map(check_pattern(cfa_pattern)).ravel().tolist()
    tags = [
        (33421, _SHORT, 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, _BYTE, 4, colour_indices, True),  # CFAPattern: 0, 1, 2 per 2x2 position
        (50710, _BYTE, 3, (0, 1, 2), True),  # CFAPlaneColor: 0, 1, 2 mean R, G, B
        (50711, _SHORT, 1, 1, True),  # CFALayout: rectangular
        (50713, _SHORT, 2, (2, 2), True),  # BlackLevelRepeatDim: one black per CFA position
        *_level_tags(black.tolist(), [white_level]),
    ]
    tags += metadata_tags(wb_gains=wb_gains, xyz_to_cam=xyz_to_cam, exif=exif, orientation=orientation)
    return _write_dng(path, cfa, _PHOTOMETRIC_CFA, tags, exif, overwrite)


def write_linear_dng(
    path: str | os.PathLike,
    balanced_rgb: np.ndarray,
    *,
    wb_gains: Sequence[float],
    xyz_to_cam: np.ndarray,
    exif: ExifInfo | None = None,
    orientation: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write a restored image as a 3-channel LinearRaw DNG (uint16, black 0, white 65535).

    The pixels are divided by the green-normalised ``wb_gains`` before storing: the file then holds
    camera RGB like the RAW it came from, so darktable's white-balance step (fed by AsShotNeutral)
    and a photographer's WB edit act as on the RAW, and a clipped highlight (1, 1, 1) comes back
    as neutral white. A channel whose gain is below 1 clips at 65535.

    Args:
        path: the output file; see :func:`~rddm.io.atomic.atomic_write` for ``overwrite``.
        balanced_rgb: ``(H, W, 3)`` white-balanced linear camera RGB in [0, 1] (model output).
        wb_gains, xyz_to_cam, exif, orientation: see :func:`metadata_tags`.
    """
    rgb = np.asarray(balanced_rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"balanced_rgb must be (H, W, 3), got {rgb.shape}")
    camera_rgb = to_uint(rgb / normalize_wb_gains(wb_gains).astype(np.float32), 16)
    tags = _level_tags([0, 0, 0], [65535] * 3)
    tags += metadata_tags(wb_gains=wb_gains, xyz_to_cam=xyz_to_cam, exif=exif, orientation=orientation)
    return _write_dng(path, camera_rgb, _PHOTOMETRIC_LINEAR_RAW, tags, exif, overwrite)
