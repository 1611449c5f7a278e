"""Folders of sRGB photos in, folders of RAW pairs out (what `rddm synth` runs)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import tifffile

from rddm.errors import InputError
from rddm.io.atomic import atomic_write
from rddm.io.dng import write_cfa_dng
from rddm.raw.reader import ExifInfo
from rddm.synth.pairs import Pair, SynthConfig, pair_rng, synthesize_pair

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
# A 14-bit sensor with a typical pedestal: noise below black survives in the file, as in a real RAW.
SYNTH_BLACK_LEVEL = 512
SYNTH_WHITE_LEVEL = 16383


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Every sRGB image under ``folder`` (recursively), sorted for reproducibility."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory of images")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_srgb(path: str | os.PathLike) -> np.ndarray:
    """An 8- or 16-bit sRGB image as ``(H, W, 3)`` float32 in [0, 1] (any path, non-ASCII included)."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH) if data.size else None
    if image is None:
        raise InputError(f"{path}: not a readable image")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return (image[..., 2::-1].astype(np.float32) / scale).copy()  # BGR(A) -> RGB


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` crop at a random even offset (the whole image when it is smaller)."""
    height, width = image.shape[:2]
    top = 2 * rng.integers(0, max(0, height - size) // 2 + 1)
    left = 2 * rng.integers(0, max(0, width - size) // 2 + 1)
    return image[top : top + size, left : left + size]


def to_raw_units(cfa: np.ndarray) -> np.ndarray:
    """Normalised mosaic [0, 1] -> uint16 raw values between the synthetic black and white levels."""
    span = SYNTH_WHITE_LEVEL - SYNTH_BLACK_LEVEL
    return np.round(SYNTH_BLACK_LEVEL + np.clip(cfa, 0.0, 1.0) * span).astype(np.uint16)


def write_mosaic_dng(path, cfa, cfa_pattern, wb_gains, xyz_to_cam, *, exif=None, overwrite=False) -> Path:
    """A normalised ``(H, W)`` mosaic in [0, 1] as a real CFA DNG at the synthetic 14-bit levels."""
    return write_cfa_dng(
        path,
        to_raw_units(cfa),
        cfa_pattern,
        black_level=[SYNTH_BLACK_LEVEL] * 4,
        white_level=SYNTH_WHITE_LEVEL,
        xyz_to_cam=xyz_to_cam,
        wb_gains=wb_gains,
        exif=exif,
        overwrite=overwrite,
    )


def write_pair(pair: Pair, lq_path: Path, hq_path: Path, *, overwrite: bool = False) -> None:
    """LQ as a real CFA DNG (levels, matrix, WB, ISO), HQ as a float32 TIFF."""
    iso = pair.noise.iso if pair.noise and pair.noise.iso else 100.0
    exif = ExifInfo(make="rddm", model="synthetic", iso=iso)
    write_mosaic_dng(
        lq_path, pair.lq_cfa, pair.cfa_pattern, pair.wb_gains, pair.xyz_to_cam, exif=exif, overwrite=overwrite
    )
    atomic_write(
        hq_path,
        lambda tmp: tifffile.imwrite(tmp, pair.hq, photometric="rgb", compression="zlib"),
        overwrite=overwrite,
    )


@dataclasses.dataclass(frozen=True)
class _Task:
    source: Path
    index: int
    cfa_pattern: str
    iso: int | None
    pattern_index: int
    iso_index: int


def _tasks(sources: list[Path], patterns: tuple[str, ...], isos: list[int | None]) -> list[_Task]:
    return [
        _Task(source, i, pattern, iso, p, k)
        for i, source in enumerate(sources)
        for p, pattern in enumerate(patterns)
        for k, iso in enumerate(isos)
    ]


@dataclasses.dataclass(frozen=True)
class _Job:
    out_dir: Path
    config: SynthConfig
    seed: int
    crop: int | None
    overwrite: bool

    def __call__(self, task: _Task) -> dict:
        rng = pair_rng(self.seed, task.index, task.pattern_index, task.iso_index)
        image = read_srgb(task.source)
        if self.crop:
            image = random_crop(image, self.crop, rng)
        config = self.config
        if task.iso is not None:
            config = dataclasses.replace(config, noise="profile", iso=task.iso)
        pair = synthesize_pair(image, config, rng, cfa_pattern=task.cfa_pattern)
        name = f"{task.source.stem}_{task.cfa_pattern}" + (f"_iso{task.iso}" if task.iso else "")
        lq_path, hq_path = self.out_dir / f"{name}_lq.dng", self.out_dir / f"{name}_hq.tiff"
        write_pair(pair, lq_path, hq_path, overwrite=self.overwrite)
        return {
            "source": str(task.source),
            "lq": lq_path.name,
            "hq": hq_path.name,
            **pair.metadata(),
        }


def synthesize_directory(
    source_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: SynthConfig,
    *,
    isos: list[int] | None = None,
    seed: int = 0,
    crop: int | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[Iterator, int], Iterator] | None = None,
) -> Path:
    """Write one pair per image x pattern x ISO into ``out_dir`` and a ``manifest.json``.

    With ``isos`` the noise is a real camera profile at each ISO; without, it follows ``config``.
    ``progress(iterator, total)`` may wrap the stream of finished pairs (a progress bar).
    Returns the manifest's path. The same arguments always give the same files.
    """
    sources = list_images(source_dir)
    if not sources:
        raise InputError(f"{source_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = _tasks(sources, config.cfa_patterns, list(isos) if isos else [None])
    job = _Job(out, config, seed, crop, overwrite)
    wrap = progress or (lambda stream, total: stream)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            entries = list(wrap(pool.imap(job, tasks), len(tasks)))
    else:
        entries = list(wrap(map(job, tasks), len(tasks)))
    manifest = {"seed": seed, "crop": crop, "config": dataclasses.asdict(config), "pairs": entries}
    manifest_path = out / "manifest.json"
    atomic_write(
        manifest_path,
        lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1), encoding="utf-8"),
        overwrite=True,
    )
    return manifest_path
