"""Reading camera RAW files through rawpy (LibRaw) into a :class:`RawImage`."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import sys
import tempfile
import warnings
from pathlib import Path

import exifread
import numpy as np
import rawpy
import tifffile

from rddm.color import DEFAULT_XYZ_TO_CAM, normalize_wb_gains
from rddm.errors import (
    CorruptRawError,
    InputError,
    LinearRawError,
    NotRawError,
    UnsupportedSensorError,
)
from rddm.raw.cfa import CFA_PATTERNS
from rddm.raw.ciff import ciff_make_model

# LibRaw's `flip` code -> EXIF orientation.
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}
_DNG_ILLUMINANT_D65 = 21
_LINEAR_RAW = 34892  # DNG PhotometricInterpretation of demosaiced data


@dataclasses.dataclass
class ExifInfo:
    """The shooting facts a photographer cares about; any may be None when the file lacks it."""

    make: str | None = None
    model: str | None = None
    datetime: str | None = None  # "YYYY:MM:DD HH:MM:SS", EXIF style
    iso: float | None = None
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    focal_length: float | None = None  # mm
    lens: str | None = None


@dataclasses.dataclass
class RawImage:
    """A Bayer RAW ready for restoration.

    Attributes:
        cfa: ``(H, W)`` float32 mosaic in [0, 1]: black level subtracted per CFA position, divided by
            (white - black), clipped. The visible area only, as stored (not rotated).
        cfa_pattern: ``"RGGB" | "BGGR" | "GRBG" | "GBRG"``, the colours of ``cfa[:2, :2]``.
        black_level: black level in raw units for each 2x2 position, row by row.
        white_level: saturation level in raw units.
        wb_gains: as-shot white-balance multipliers (R, G, B), green = 1.
        xyz_to_cam: ``(3, 3)`` XYZ -> camera matrix (DNG ColorMatrix / LibRaw rgb_xyz_matrix).
        color_matrix_source: where ``xyz_to_cam`` came from: ``"libraw"``, ``"dng"`` or ``"default"``.
        orientation: EXIF orientation 1-8 of the stored mosaic.
        exif: shooting metadata.
        path: the file it was read from, or None for synthesized images.
    """

    cfa: np.ndarray
    cfa_pattern: str
    black_level: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    white_level: float = 1.0
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    xyz_to_cam: np.ndarray = dataclasses.field(default_factory=lambda: DEFAULT_XYZ_TO_CAM.copy())
    color_matrix_source: str = "default"
    orientation: int = 1
    exif: ExifInfo = dataclasses.field(default_factory=ExifInfo)
    path: Path | None = None

    @property
    def height(self) -> int:
        return int(self.cfa.shape[0])

    @property
    def width(self) -> int:
        return int(self.cfa.shape[1])

    def summary(self) -> dict:
        """JSON-friendly description (what `rddm info` prints)."""
        return {
            "path": str(self.path) if self.path else None,
            "make": self.exif.make,
            "model": self.exif.model,
            "cfa_pattern": self.cfa_pattern,
            "width": self.width,
            "height": self.height,
            "black_level": [round(float(b), 3) for b in self.black_level],
            "white_level": float(self.white_level),
            "wb_gains": [round(float(g), 4) for g in self.wb_gains],
            "xyz_to_cam": np.round(self.xyz_to_cam, 4).tolist(),
            "color_matrix_source": self.color_matrix_source,
            "orientation": self.orientation,
            "iso": self.exif.iso,
            "exposure_time": self.exif.exposure_time,
            "f_number": self.exif.f_number,
            "focal_length": self.exif.focal_length,
            "lens": self.exif.lens,
            "datetime": self.exif.datetime,
        }


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a RAW file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise NotRawError(f"{path}: empty file, not a camera RAW")


def _cfa_pattern(raw: rawpy.RawPy, path: Path) -> str:
    if raw.raw_type != rawpy.RawType.Flat:
        raise _linear_error(path)
    pattern = raw.raw_pattern
    desc = raw.color_desc.decode("ascii", "replace")
    if pattern is None or pattern.shape != (2, 2):
        shape = "none" if pattern is None else "x".join(map(str, pattern.shape))
        kind = "X-Trans" if pattern is not None and pattern.shape == (6, 6) else "non-Bayer"
        raise UnsupportedSensorError(
            f"{path}: {kind} sensor (CFA {shape}) is not supported, only 2x2 Bayer mosaics"
        )
    name = "".join(desc[i] for i in pattern.reshape(-1))
    if name not in CFA_PATTERNS:
        raise UnsupportedSensorError(f"{path}: colour filter {name!r} is not a Bayer RGB pattern")
    return name


def _linear_error(path: Path) -> LinearRawError:
    return LinearRawError(
        f"{path}: already demosaiced (linear DNG or similar), there is no Bayer mosaic to restore"
    )


def _is_linear_dng(path: Path) -> bool:
    """True for a DNG whose main image is LinearRaw (already demosaiced), checked before LibRaw,
    which refuses small ones as if they were damaged."""
    if path.suffix.lower() != ".dng":
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            return any(page.photometric == _LINEAR_RAW for page in tif.pages)
    except Exception:  # not a readable TIFF: LibRaw gives the verdict
        return False


def _dng_color_matrix(path: Path) -> np.ndarray | None:
    """XYZ->camera matrix from a DNG's ColorMatrix1/2, preferring the D65-calibrated one."""
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            candidates = []
            for matrix_tag, illuminant_tag in (
                ("ColorMatrix1", "CalibrationIlluminant1"),
                ("ColorMatrix2", "CalibrationIlluminant2"),
            ):
                if matrix_tag in tags:
                    illuminant = tags[illuminant_tag].value if illuminant_tag in tags else None
                    candidates.append((illuminant, tags[matrix_tag].value))
    except Exception:  # not a TIFF-based file, or unreadable tags: no DNG matrix
        return None
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0] == _DNG_ILLUMINANT_D65)
    values = np.asarray(candidates[-1][1], dtype=np.float64).reshape(-1)
    if values.size == 18:
        values = values[0::2] / values[1::2]
    if values.size != 9:
        return None
    return values.reshape(3, 3)


def _color_matrix(raw: rawpy.RawPy, path: Path) -> tuple[np.ndarray, str]:
    libraw = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3]
    if np.any(libraw != 0):
        return libraw, "libraw"
    dng = _dng_color_matrix(path)
    if dng is not None and np.any(dng != 0):
        return dng, "dng"
    warnings.warn(
        f"{path}: no colour matrix in LibRaw's tables or the file; using an sRGB-equivalent one",
        stacklevel=3,
    )
    return DEFAULT_XYZ_TO_CAM.copy(), "default"


def _wb_gains(raw: rawpy.RawPy, path: Path) -> tuple[float, float, float]:
    for source in (raw.camera_whitebalance, raw.daylight_whitebalance):
        try:
            return tuple(float(g) for g in normalize_wb_gains(source))
        except ValueError:
            continue
    warnings.warn(f"{path}: no usable white balance in the file; using 1, 1, 1", stacklevel=3)
    return (1.0, 1.0, 1.0)


def _exif(raw: rawpy.RawPy, path: Path) -> ExifInfo:
    info = ExifInfo()
    try:
        with open(path, "rb") as handle:
            tags = exifread.process_file(handle, details=False)
    except Exception:  # exifread fails on some RAW containers (CRW, KDC): LibRaw still has the basics
        tags = {}

    def text(*names: str) -> str | None:
        for name in names:
            if name in tags and str(tags[name]).strip():
                return str(tags[name]).strip()
        return None

    info.make = text("Image Make")
    info.model = text("Image Model", "Image UniqueCameraModel")
    if info.make is None and path.suffix.lower() == ".crw":
        info.make, info.model = ciff_make_model(path)
    info.lens = text("EXIF LensModel", "MakerNote LensModel") or (raw.lens.model or None)
    info.datetime = text("EXIF DateTimeOriginal", "Image DateTimeOriginal", "Image DateTime")
    other = raw.other
    if (
        info.datetime is None
        and isinstance(other.timestamp, _dt.datetime)
        and other.timestamp.year > 1970  # LibRaw reports the epoch for "no date"
    ):
        info.datetime = other.timestamp.strftime("%Y:%m:%d %H:%M:%S")
    info.iso = float(other.iso_speed) if other.iso_speed > 0 else None
    info.exposure_time = float(other.shutter_speed) if other.shutter_speed > 0 else None
    info.f_number = round(float(other.aperture), 2) if other.aperture > 0 else None
    info.focal_length = round(float(other.focal_length), 2) if other.focal_length > 0 else None
    return info


# What a file that LibRaw refuses really is, by its first bytes (for the error message).
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (WebP/AVI/WAV)"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)
RAW_SUFFIXES = frozenset(
    ".3fr .ari .arw .bay .cr2 .cr3 .crw .dcr .dng .erf .fff .gpr .iiq .k25 .kdc .mef .mos .mrw "
    ".nef .nrw .orf .pef .raf .raw .rw2 .rwl .sr2 .srf .srw .x3f".split()
)


def _refused(path: Path) -> InputError:
    """The error for a file LibRaw will not open: not a RAW at all, or a damaged one."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return NotRawError(f"{path}: {kind}, not a camera RAW file")
    if path.suffix.lower() in RAW_SUFFIXES:
        return CorruptRawError(
            f"{path}: has a RAW file name but LibRaw cannot decode it (truncated or damaged?)"
        )
    return NotRawError(f"{path}: not a camera RAW file that LibRaw recognises")


@contextlib.contextmanager
def _captured_stderr():
    """Keep LibRaw's C-level messages ("Unexpected end of file") off the user's terminal.

    Yields a function returning the distinct messages printed so far, for the error text.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)

        def messages() -> list[str]:
            sink.seek(0)
            lines = sink.read().decode("utf-8", "replace").splitlines()
            return list(dict.fromkeys(line.split(": ", 1)[-1] for line in lines if line.strip()))

        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def read_raw(path: str | os.PathLike) -> RawImage:
    """Read a Bayer camera RAW (any format LibRaw knows, CFA DNG included) into a :class:`RawImage`.

    Raises:
        InputError: missing path, directory, unreadable file.
        NotRawError: not a RAW LibRaw recognises (a JPEG renamed .NEF, an empty file, ...).
        CorruptRawError: a RAW whose data cannot be decoded (truncated, damaged).
        UnsupportedSensorError: X-Trans, Foveon or other non-2x2-Bayer layouts.
        LinearRawError: an already demosaiced (linear) DNG.
    """
    path = Path(path)
    _check_readable(path)
    if _is_linear_dng(path):
        raise _linear_error(path)
    with _captured_stderr() as libraw_messages:
        try:
            raw = rawpy.imread(str(path))
        except (rawpy.LibRawError, OSError):
            raise _refused(path) from None
        try:
            cfa_pattern = _cfa_pattern(raw, path)
            visible = raw.raw_image_visible.astype(np.float32)
        except (rawpy.LibRawError, OSError) as error:
            raw.close()
            reason = "; ".join(libraw_messages()) or type(error).__name__
            raise CorruptRawError(f"{path}: RAW data is truncated or damaged ({reason})") from None
        except InputError:
            raw.close()
            raise
    with raw:  # metadata only from here: warnings reach the user's stderr again
        return _decode(raw, path, cfa_pattern, visible)


def _decode(raw: rawpy.RawPy, path: Path, cfa_pattern: str, visible: np.ndarray) -> RawImage:
    """Normalise the visible mosaic and gather the metadata of an unpacked RAW."""
    pattern_index = raw.raw_pattern
    per_colour_black = np.asarray(raw.black_level_per_channel, dtype=np.float32)
    black = per_colour_black[pattern_index]  # (2, 2), one per CFA position
    white_per_colour = raw.camera_white_level_per_channel
    white = float(raw.white_level)
    if white_per_colour is not None and all(w > 0 for w in white_per_colour):
        white = float(min(white_per_colour))
    if np.any(white <= black):
        raise CorruptRawError(f"{path}: white level {white} is not above black level")
    black_map = np.tile(black, (visible.shape[0] // 2 + 1, visible.shape[1] // 2 + 1))
    black_map = black_map[: visible.shape[0], : visible.shape[1]]
    cfa = np.clip((visible - black_map) / (white - black_map), 0.0, 1.0).astype(np.float32)
    xyz_to_cam, matrix_source = _color_matrix(raw, path)
    return RawImage(
        cfa=cfa,
        cfa_pattern=cfa_pattern,
        black_level=tuple(float(b) for b in black.reshape(-1)),
        white_level=white,
        wb_gains=_wb_gains(raw, path),
        xyz_to_cam=xyz_to_cam,
        color_matrix_source=matrix_source,
        orientation=_FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1),
        exif=_exif(raw, path),
        path=path,
    )
