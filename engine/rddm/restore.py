"""Restoring one RAW file to an output file: what `rddm restore` and the engine's jobs run."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from rddm.errors import OutputError
from rddm.io.atomic import next_free_path
from rddm.io.images import FORMAT_SUFFIXES, SUPPORTED_FORMATS, write_output
from rddm.model.pipeline import TILE_OVERLAP, TILE_SIZE, RDDMPipeline
from rddm.raw import read_raw

# Full-resolution pixels; a tile of 512 is 256 x 256 packed planes, overlapping by 48 of them. An
# overlap of 32 kept the step-36100 weights within the tile-seam bound (tests/model/test_shipped.py)
# but not the step-44100 ones (1.10e-3 on DSC_1339); 48 gives 6.8e-4 there (see the README).
DEFAULT_TILE = 2 * TILE_SIZE
DEFAULT_OVERLAP = 2 * TILE_OVERLAP


def output_path(source: Path, out_dir: Path | None, fmt: str, *, overwrite: bool) -> Path:
    """``<stem>_rddm.<ext>`` next to the RAW or in ``out_dir``; ``_rddm_1``, ``_rddm_2``... unless
    ``overwrite``."""
    if fmt not in SUPPORTED_FORMATS:
        raise ValueError(f"format must be one of {', '.join(SUPPORTED_FORMATS)}, got {fmt!r}")
    directory = Path(out_dir) if out_dir is not None else source.parent
    if not directory.is_dir():
        raise OutputError(f"{directory}: output directory does not exist")
    if not os.access(directory, os.W_OK):
        raise OutputError(f"{directory}: output directory is not writable")
    suffix = FORMAT_SUFFIXES[fmt]
    if overwrite:
        return directory / f"{source.stem}_rddm{suffix}"
    return next_free_path(directory, source.stem, suffix)


def packed_tiling(pipeline: RDDMPipeline, tile: int = DEFAULT_TILE) -> tuple[int, int]:
    """(tile size, overlap) in packed pixels for a ``tile`` of full-resolution pixels: what every
    restore of the engine and the CLI uses, so a preview's region equals the full restore there."""
    multiple = pipeline.tile_multiple
    packed_tile = max(multiple, (tile // 2) // multiple * multiple)
    overlap = min(packed_tile - multiple, DEFAULT_OVERLAP // 2 // multiple * multiple)
    return packed_tile, max(0, overlap)


def restore_file(
    pipeline: RDDMPipeline,
    source: str | os.PathLike,
    *,
    strength: float = 0.5,
    fmt: str = "dng",
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    tile: int = DEFAULT_TILE,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    device_lock: contextlib.AbstractContextManager | None = None,
) -> Path:
    """Restore ``source`` and write it; returns the written path. The RAW itself is only read."""
    source = Path(source)
    raw = read_raw(source)
    target = output_path(source, Path(out_dir) if out_dir else None, fmt, overwrite=overwrite)
    packed_tile, overlap = packed_tiling(pipeline, tile)
    restored = pipeline(
        raw,
        strength,
        tile_size=packed_tile,
        tile_overlap=overlap,
        progress=progress,
        cancel=cancel,
        device_lock=device_lock,
    )
    return write_output(
        target,
        restored,
        fmt,
        wb_gains=raw.wb_gains,
        xyz_to_cam=raw.xyz_to_cam,
        exif=raw.exif,
        orientation=raw.orientation,
        overwrite=overwrite,
    )
