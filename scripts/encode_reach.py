"""How far (packed pixels) a model's encoder side reads around a point: nudge one packed pixel of
random planes and see how far the RVAE's latent, the UNet's x0 prediction ``z_hq`` and the skip
features change. Against the decoder's reaches (``RDDMPipeline.decode_reaches``) this says whether a
region restore could also encode only part of a tile: the restored end needs ``z_hq`` exact over
the first decode box, so a tile's encode could shrink only to that box plus ``z_hq``'s reach.

    python scripts/encode_reach.py [--model rddm-tiny] [--size 512] [--region [--raw FILE]]

With ``--region`` it also times, in one 512x512 region across two tile corners (9 tiles, the
engine's tiling) of ``--raw`` (default: the benchmark's synthetic 12 MP DNG), each tile's encoder +
UNet against its decodes (CPU seconds summed over the tile workers).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import torch

from rddm.evaluate.bench import SIZES, bench_raw
from rddm.model.registry import load_pipeline


def reach(base: torch.Tensor, nudged: torch.Tensor, middle: int, scale: int) -> int | None:
    """Packed pixels from ``middle`` to the farthest change of a feature at 1/``scale`` resolution."""
    changed = (base != nudged)[0].any(dim=0)
    rows = torch.nonzero(changed.any(dim=1)).flatten()
    cols = torch.nonzero(changed.any(dim=0)).flatten()
    if len(rows) == 0:
        return 0
    if min(rows.min(), cols.min()) == 0 or max(rows.max(), cols.max()) == changed.shape[-1] - 1:
        return None  # reaches the probe's edge: no bound seen
    at = middle // scale
    return scale * int(max(at - rows.min(), rows.max() - at, at - cols.min(), cols.max() - at))


def time_region(pipeline, path: str) -> None:
    """Encoder + UNet against decode time of a 9-tile region of the RAW at ``path``."""
    from rddm.model.tiling import tile_grid, tiles_touching
    from rddm.raw import read_raw
    from rddm.restore import packed_tiling

    raw = read_raw(path)
    size, overlap = packed_tiling(pipeline)
    grid = tile_grid(raw.height // 2, raw.width // 2, size, overlap, pipeline.tile_multiple)
    second = sorted({tile.top for tile in grid})[1]  # a region from just above the second row of tiles
    start = second - 10
    tiles = tiles_touching(grid, start, start, start + 256, start + 256)
    spent = collections.Counter()

    def timed(name, method):
        def run(*args, **kwargs):
            started = time.perf_counter()
            result = method(*args, **kwargs)
            spent[name] += time.perf_counter() - started
            return result

        return run

    pipeline._encode_tile = timed("encoder + UNet", pipeline._encode_tile)
    pipeline._decode_end = timed("decode", pipeline._decode_end)
    roi = (2 * start, 2 * start, 512, 512)
    for _ in range(3):  # the first warms up
        spent.clear()
        started = time.perf_counter()
        pipeline.restore_ends(raw, roi=roi, tile_size=size, tile_overlap=overlap)
        wall = time.perf_counter() - started
    total = sum(spent.values())
    shares = ", ".join(f"{name} {sec:.2f} s ({100 * sec / total:.0f}%)" for name, sec in spent.items())
    print(f"region {roi} ({len(tiles)} tiles, {size}/{overlap}): {wall:.2f} s wall; CPU {shares}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rddm-tiny")
    parser.add_argument("--size", type=int, default=512, help="probe size in packed pixels")
    parser.add_argument("--region", action="store_true", help="also time a 9-tile region (encoder vs decode)")
    parser.add_argument("--raw", help="the RAW for --region (default: the benchmark's 12 MP DNG)")
    args = parser.parse_args()
    pipeline = load_pipeline(args.model)
    pipeline._inference_adapter("RGGB")
    size, middle = args.size, args.size // 2
    planes = torch.rand(1, 4, size, size, generator=torch.Generator().manual_seed(0))
    nudged = planes.clone()
    nudged[..., middle, middle] += 0.25
    base, moved = pipeline._encode_tile(planes, True), pipeline._encode_tile(nudged, True)
    latent_scale = size // base[0].shape[-1]
    print(f"latent: {reach(base[0], moved[0], middle, latent_scale)} packed px")
    print(f"z_hq (UNet x0): {reach(base[2], moved[2], middle, latent_scale)} packed px")
    if base[1] is not None:  # the skip features (models with skip connections)
        print(f"skip features: {reach(base[1], moved[1], middle, size // base[1].shape[-1])} packed px")
    print(f"decoder reaches per cut {pipeline.rvae.decode_cuts}: {pipeline.decode_reaches('RGGB')}")
    if args.region:
        with tempfile.TemporaryDirectory() as scratch:
            raw = args.raw or bench_raw(Path(scratch), "12MP", *SIZES["12MP"])
            time_region(pipeline.to("auto"), raw)  # .to unmerges the probe's adapter


if __name__ == "__main__":
    main()
