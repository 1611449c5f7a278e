"""Where a tile's time goes on the CPU, and what two speed-ups of the pipeline buy (`make tile-timing`).

On one thread (the pipeline's CPU workers run one tile per core, each on one thread), median of
``--repeats`` runs, each pair of variants interleaved so that load on a shared machine hits both:

- each stage of one 244 px tile (the fitted grid's tile on a 24 MP image): encoder, UNet, decoder;
- a whole 256 px tile with the weights in torch's default layout against channels-last (what
  ``RDDMPipeline.to("cpu")`` uses), and the largest difference between their outputs;
- 512x512 regions of the bench's 12 MP file, both strength ends, with each tile's decode trimmed to
  the region (what the pipeline does) against whole-tile decodes, and their largest difference.

    python scripts/tile_timing.py [--model rddm-tiny] [--repeats 6] [--out out/tile-timing]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from rddm.evaluate.bench import bench_raw
from rddm.model.registry import load_pipeline
from rddm.raw import read_raw


def _seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _interleaved(variants: dict, repeats: int) -> dict:
    times = {name: [] for name in variants}
    for _ in range(repeats + 1):  # the first round warms up and is dropped
        for name, function in variants.items():
            times[name].append(_seconds(function))
    return {name: statistics.median(values[1:]) for name, values in times.items()}


@torch.no_grad()
def stages(pipeline, repeats: int) -> None:
    planes = torch.rand(1, 4, 244, 244, generator=torch.Generator().manual_seed(0))
    latent, skip = pipeline.rvae.encode(planes)
    prompt = pipeline.null_prompt
    times = _interleaved(
        {
            "encoder": lambda: pipeline.rvae.encode(planes),
            "UNet": lambda: pipeline.unet(latent, pipeline.timestep, encoder_hidden_states=prompt),
            "decoder (one end)": lambda: pipeline.rvae.decode(latent, skip, planes, "RGGB"),
        },
        repeats,
    )
    print("one 244 px tile: " + ", ".join(f"{name} {value:.3f} s" for name, value in times.items()))


@torch.no_grad()
def memory_format(model: str, repeats: int) -> None:
    plain = load_pipeline(model)  # as loaded: torch's default (NCHW) layout
    fast = load_pipeline(model).to("cpu")  # channels-last on the CPU
    for pipeline in (plain, fast):
        pipeline.activate_adapter("RGGB")
    planes = torch.rand(1, 4, 256, 256, generator=torch.Generator().manual_seed(0))
    difference = max(
        float((a - b).abs().max())
        for a, b in zip(
            plain._run_tile(planes, "RGGB", True, True),
            fast._run_tile(planes, "RGGB", True, True),
            strict=True,
        )
    )
    times = _interleaved(
        {
            "NCHW": lambda: plain._run_tile(planes, "RGGB", True, True),
            "channels-last": lambda: fast._run_tile(planes, "RGGB", True, True),
        },
        repeats,
    )
    nchw, last = times["NCHW"], times["channels-last"]
    print(
        f"one 256 px tile, both ends: NCHW {nchw:.3f} s, channels-last {last:.3f} s (x{last / nchw:.2f}); "
        f"outputs differ by at most {difference:.1e}"
    )


def regions(model: str, folder: Path, repeats: int) -> None:
    pipeline = load_pipeline(model).to("cpu")
    raw = read_raw(bench_raw(folder, "12MP", 4000, 3000))
    trimmed = pipeline._windows

    def whole_tiles(tiles, *args):
        return [None] * len(tiles)

    def restore(windows, roi):
        pipeline._windows = windows
        try:
            return pipeline.restore_ends(raw, roi=roi, tile_size=256, tile_overlap=32)
        finally:
            pipeline._windows = trimmed

    rois = [(600 + 400 * (index % 7), 1200 + 8 * (index // 7), 512, 512) for index in range(repeats + 1)]
    a, b = restore(trimmed, rois[0]), restore(whole_tiles, rois[0])
    difference = max(np.abs(a.fidelity - b.fidelity).max(), np.abs(a.restored - b.restored).max())
    times = {"trimmed": [], "whole": []}
    for roi in rois:  # a new region each time (no cache in the pipeline anyway)
        times["trimmed"].append(_seconds(lambda roi=roi: restore(trimmed, roi)))
        times["whole"].append(_seconds(lambda roi=roi: restore(whole_tiles, roi)))
    trimmed_s, whole_s = (statistics.median(times[k][1:]) for k in ("trimmed", "whole"))
    print(
        f"512x512 region, both ends: trimmed decodes {trimmed_s:.2f} s, whole-tile decodes {whole_s:.2f} s "
        f"(x{trimmed_s / whole_s:.2f}); outputs differ by at most {difference:.1e}; decoder reach "
        f"{pipeline.decode_reach('RGGB')} packed px"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="rddm-tiny")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--out", default="out/tile-timing", help="folder for the synthesized 12 MP file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    pipeline = load_pipeline(args.model).to("cpu")
    pipeline.activate_adapter("RGGB")
    stages(pipeline, args.repeats)
    memory_format(args.model, args.repeats)
    regions(args.model, folder, args.repeats)


if __name__ == "__main__":
    main()
