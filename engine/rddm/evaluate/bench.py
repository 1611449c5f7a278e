"""`rddm bench`: seconds and peak memory of restoring, against LibRaw's AHD on the same files.

Whole-file figures are measured on child processes (``os.wait4`` gives each one's peak RSS), so a
figure is what a user's command costs: start-up, model load, reading, restoring and writing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rddm.errors import RddmError
from rddm.synth import SynthConfig, pair_rng, synthesize_pair
from rddm.synth.dataset import read_srgb, write_pair

SIZES = {"12MP": (4000, 3000), "24MP": (6000, 4000)}
SOURCE = "../shared/data/srgb-bench/kodak24/kodim05.png"


def bench_raw(folder: Path, name: str, width: int, height: int, source: str = SOURCE) -> Path:
    """A CFA DNG of ``width`` x ``height`` (a Kodak photo enlarged, ISO 3200 noise)."""
    path = folder / f"{name}.dng"
    if path.exists():
        return path
    if Path(source).is_file():
        image = cv2.resize(read_srgb(source), (width, height), interpolation=cv2.INTER_CUBIC)
    else:  # without the shared data: a smooth synthetic scene of the same size
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        image = 0.5 + 0.4 * np.stack([np.sin(xx / 97), np.cos(yy / 61), np.sin((xx + yy) / 43)], -1)
    pair = synthesize_pair(
        np.clip(image, 0, 1), SynthConfig(noise="reference", iso=3200), pair_rng(0), "RGGB"
    )
    write_pair(pair, path, folder / f"{name}_hq.tiff", overwrite=True)
    return path


def measure(command: list[str]) -> dict:
    """Seconds and peak RSS (MB) of a child process, through GNU time's ``%M`` (the peak of that
    process alone; ``os.wait4``'s figure was seen to repeat the parent's); a command that fails
    raises :class:`RddmError` with its last line of stderr.
    Without GNU time (Debian package ``time``) the peak is reported as None."""
    gnu_time = ["/usr/bin/time", "-f", "rddm-peak-kb %M"] if os.path.exists("/usr/bin/time") else []
    started = time.perf_counter()
    result = subprocess.run(
        [*gnu_time, *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        gnu_lines = ("rddm-peak-kb ", "Command exited with non-zero status", "Command terminated by signal")
        lines = [x for x in result.stderr.splitlines() if x.strip() and not x.startswith(gnu_lines)]
        said = lines[-1].strip() if lines else "no message"
        raise RddmError(f"{' '.join(map(str, command[:3]))} failed (exit {result.returncode}): {said}")
    peak = None
    if gnu_time:
        peak = round(int(result.stderr.rsplit("rddm-peak-kb ", 1)[1].split()[0]) / 1024)
    return {"seconds": round(seconds, 2), "peak_rss_mb": peak}


_AHD = (
    "import sys, rawpy, numpy\n"
    "with rawpy.imread(sys.argv[1]) as raw:\n"
    "    rgb = raw.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, use_camera_wb=True,"
    " output_bps=16)\n"
    "numpy.save(sys.argv[2], rgb)\n"
)


def bench_files(model: str, folder: Path, sizes: dict, extra: tuple[str, ...] = ()) -> list[dict]:
    """`rddm restore` and LibRaw AHD (rawpy, to a 16-bit array) on each ``{name: (width, height)}``,
    in child processes."""
    rddm = str(Path(sys.executable).parent / "rddm")
    rows = []
    for name, (width, height) in sizes.items():
        path = bench_raw(folder, name, width, height)
        restore = measure(
            [
                rddm,
                "restore",
                str(path),
                "--model",
                model,
                "--out",
                str(folder),
                "--quiet",
                "--overwrite",
                *extra,
            ]
        )
        ahd = measure([sys.executable, "-c", _AHD, str(path), str(folder / "ahd.npy")])
        rows.append(
            {
                "size": name,
                "rddm_seconds": restore["seconds"],
                "rddm_peak_rss_mb": restore["peak_rss_mb"],
                "ahd_seconds": ahd["seconds"],
                "ahd_peak_rss_mb": ahd["peak_rss_mb"],
                "ratio": round(restore["seconds"] / ahd["seconds"], 1),
            }
        )
    return rows


def region_tiles(grid, x: int, y: int, side: int = 512) -> int:
    """How many tiles of ``grid`` (packed pixels) a ``side`` px region at full-resolution (x, y) touches."""
    from rddm.model.tiling import tiles_touching

    return len(tiles_touching(grid, y // 2, x // 2, (y + side) // 2, (x + side) // 2))


def bench_regions(width: int, height: int, count: int, side: int = 512) -> list[tuple[int, int, int, int]]:
    """``count`` ``(x, y, side, side)`` regions of a ``width`` x ``height`` picture at seeded random
    positions: the bench's regions (``scripts/tile_timing.py`` times the same ones)."""
    rng = np.random.default_rng(0)
    regions = []
    for _ in range(count):
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        regions.append((x, y, side, side))
    return regions


def bench_roi(model: str, folder: Path, repeats: int = 24) -> dict:
    """New 512x512 regions (both strength ends) and strength changes on them (blend + render), at
    the engine's tiling (rddm.restore.packed_tiling). A region's time follows how many tiles it
    touches (4, 6 or 9), so the regions sit at ``repeats`` seeded random positions: the mean is what
    a user clicking around waits, the slowest what they wait at worst. The first region warms up."""
    from rddm.color import render_srgb
    from rddm.model.registry import load_pipeline
    from rddm.model.tiling import tile_grid
    from rddm.raw import read_raw
    from rddm.restore import packed_tiling

    pipeline = load_pipeline(model).to("auto")  # as the engine and the CLI load it (channels-last on a CPU)
    tile_size, overlap = packed_tiling(pipeline)
    raw = read_raw(bench_raw(folder, "12MP", *SIZES["12MP"]))
    grid = tile_grid(raw.height // 2, raw.width // 2, tile_size, overlap, pipeline.tile_multiple)
    new_roi, change, tiles = [], [], []
    for roi in bench_regions(raw.width, raw.height, repeats + 1):
        tiles.append(region_tiles(grid, *roi[:2]))
        started = time.perf_counter()
        ends = pipeline.restore_ends(raw, roi=roi, tile_size=tile_size, tile_overlap=overlap)
        new_roi.append(time.perf_counter() - started)
        for strength in (0.1, 0.35, 0.6, 0.85):
            started = time.perf_counter()
            render_srgb(ends.blend(strength), raw.xyz_to_cam)
            change.append(time.perf_counter() - started)
    return {
        "tiling": f"{tile_size}/{overlap}",
        "roi_512_seconds": round(statistics.mean(new_roi[1:]), 3),
        "roi_512_worst_seconds": round(max(new_roi[1:]), 3),
        "roi_512_tiles": tiles[1:],
        "strength_change_ms": round(1000 * statistics.median(change), 1),
    }


def run_bench(model: str, out: Path, sizes: list[str], sd21: bool = True) -> dict:
    """Every benchmark; writes ``bench.json`` and ``bench.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        chosen = {name: SIZES[name] for name in sizes}
        results = {"model": model, "cpu_count": os.cpu_count(), "files": bench_files(model, folder, chosen)}
        results |= bench_roi(model, folder)
        if sd21:
            results["sd21_reduced"] = bench_sd21(folder)
    (out / "bench.json").write_text(json.dumps(results, indent=1))
    (out / "bench.md").write_text(_markdown(results))
    return results


def bench_sd21(folder: Path) -> list[dict]:
    """rddm-sd21's code path at reduced widths (random weights): peak RSS for growing images, tiled."""
    from rddm.model.sd21 import build_sd21, write_reduced_base

    model = build_sd21(write_reduced_base(folder / "sd21-base"), folder / "rddm-sd21-reduced")
    rows = []
    for name, size in (("1MP", (1216, 832)), ("4MP", (2432, 1664))):
        measured = bench_files(
            str(model), folder, {name: size}, extra=("--allow-untrained", "--tile", "512")
        )[0]
        rows.append(
            {"size": name, "seconds": measured["rddm_seconds"], "peak_rss_mb": measured["rddm_peak_rss_mb"]}
        )
    return rows


def _markdown(results: dict) -> str:
    lines = [
        f"Model `{results['model']}`, {results['cpu_count']} CPU cores.",
        "",
        "| file | rddm restore s | peak RSS MB | LibRaw AHD s | AHD peak RSS MB | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["files"]:
        lines.append(
            f"| {row['size']} | {row['rddm_seconds']} | {row['rddm_peak_rss_mb']} | {row['ahd_seconds']} |"
            f" {row['ahd_peak_rss_mb']} | {row['ratio']}x |"
        )
    lines += [
        "",
        f"New 512x512 region (both strength ends, tiles {results['tiling']} packed px, mean of"
        f" {len(results['roi_512_tiles'])} random positions touching {results['roi_512_tiles']} tiles):"
        f" {results['roi_512_seconds']} s, slowest {results['roi_512_worst_seconds']} s;"
        f" strength change on it (blend + render): {results['strength_change_ms']} ms.",
    ]
    if "sd21_reduced" in results:
        lines += ["", "rddm-sd21 code path at reduced widths, tiled 512 px:", ""]
        lines += [
            f"- {r['size']}: {r['seconds']} s, peak RSS {r['peak_rss_mb']} MB"
            for r in results["sd21_reduced"]
        ]
    return "\n".join(lines) + "\n"
