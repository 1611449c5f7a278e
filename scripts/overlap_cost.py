"""What a larger tile overlap costs: 512x512 region restores and whole 12 MP restores of the bench's
file at 256 packed pixels per tile, overlapping by each of ``--overlaps`` (packed pixels), the
variants interleaved so that load on a shared machine hits them all; and the largest difference
between the whole restores. The CLI and the engine use 256/48 (rddm.restore.packed_tiling; 256/32
before the step-44100 weights).
First, without the model: how many tiles a 512 px region touches on the 12 MP file's grid, over 400
random positions (a region's time follows that count, so a few fixed positions can mislead).

    python scripts/overlap_cost.py [--model rddm-tiny] [--overlaps 32 48] [--repeats 12]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from rddm.evaluate.bench import SIZES, bench_raw, region_tiles
from rddm.model.registry import load_pipeline
from rddm.model.tiling import tile_grid
from rddm.raw import read_raw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="rddm-tiny")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[32, 48])
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    pipeline = load_pipeline(args.model)
    rng = np.random.default_rng(0)
    width, height = SIZES["12MP"]
    corners = [(int(rng.integers(0, height - 512)), int(rng.integers(0, width - 512))) for _ in range(400)]
    for overlap in args.overlaps:
        grid = tile_grid(height // 2, width // 2, 256, overlap, pipeline.tile_multiple)
        counts = [region_tiles(grid, x, y) for y, x in corners]
        spread = dict(sorted(Counter(counts).items()))
        print(f"512 px region, 256/{overlap}: {np.mean(counts):.2f} tiles, mean ({spread})")
    with tempfile.TemporaryDirectory() as scratch:
        raw = read_raw(bench_raw(Path(scratch), "12MP", *SIZES["12MP"]))
    region = {overlap: [] for overlap in args.overlaps}
    # The first random positions (plus one to warm up), so the timed regions are a fair sample.
    rois = [(x, y, 512, 512) for y, x in corners[: args.repeats + 1]]
    for roi in rois:
        for overlap in args.overlaps:
            started = time.perf_counter()
            pipeline.restore_ends(raw, roi=roi, tile_size=256, tile_overlap=overlap)
            region[overlap].append(time.perf_counter() - started)
    for overlap, seconds in region.items():
        grid = tile_grid(height // 2, width // 2, 256, overlap, pipeline.tile_multiple)
        counts = [region_tiles(grid, x, y, side) for x, y, side, _ in rois]
        # The first region of each pays for warming up, as in `rddm bench`.
        print(
            f"512 px region, 256/{overlap}: mean {statistics.mean(seconds[1:]):.3f} s, slowest"
            f" {max(seconds[1:]):.3f} s (these regions touch {counts[1:]} tiles)"
        )
    whole = {}
    for overlap in args.overlaps:
        started = time.perf_counter()
        whole[overlap] = pipeline(raw, 0.5, tile_size=256, tile_overlap=overlap)
        print(f"12 MP restore, 256/{overlap}: {time.perf_counter() - started:.1f} s")
    first = args.overlaps[0]
    for overlap in args.overlaps[1:]:
        difference = np.abs(whole[first] - whole[overlap]).max()
        print(f"12 MP max difference 256/{first} vs 256/{overlap}: {difference:.2e}")


if __name__ == "__main__":
    main()
