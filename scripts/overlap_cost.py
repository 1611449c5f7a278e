"""What a larger tile overlap costs: 512x512 region restores and whole 12 MP restores of the bench's
file at 256 packed pixels per tile, overlapping by each of ``--overlaps`` (packed pixels), the
variants interleaved so that load on a shared machine hits them all; and the largest difference
between the whole restores. The CLI and the engine use 256/32 (rddm.restore.packed_tiling).

    python scripts/overlap_cost.py [--model rddm-tiny] [--overlaps 32 48] [--repeats 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rddm.evaluate.bench import SIZES, bench_raw
from rddm.model.registry import load_pipeline
from rddm.raw import read_raw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="rddm-tiny")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[32, 48])
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    pipeline = load_pipeline(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        raw = read_raw(bench_raw(Path(scratch), "12MP", *SIZES["12MP"]))
    region = {overlap: [] for overlap in args.overlaps}
    for index in range(args.repeats):
        roi = (300 + 512 * index, 1200, 512, 512)
        for overlap in args.overlaps:
            started = time.perf_counter()
            pipeline.restore_ends(raw, roi=roi, tile_size=256, tile_overlap=overlap)
            region[overlap].append(time.perf_counter() - started)
    for overlap, seconds in region.items():
        # The first region of each pays for warming up, as in `rddm bench`.
        print(f"512 px region, 256/{overlap}: median {statistics.median(seconds[1:]):.3f} s")
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
