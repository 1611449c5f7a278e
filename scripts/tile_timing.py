"""Where a tile's time goes on the CPU, and what two speed-ups of the pipeline buy (`make tile-timing`).

On one thread (the pipeline's CPU workers run one tile per core, each on one thread), median of
``--repeats`` runs, each pair of variants interleaved so that load on a shared machine hits both:

- each stage of one 244 px tile (the fitted grid's tile on a 24 MP image): encoder, UNet, decoder;
- a whole 256 px tile with the weights in torch's default layout against channels-last (what
  ``RDDMPipeline.to("cpu")`` uses), and the largest difference between their outputs;
- 512x512 regions of the bench's 12 MP file, both strength ends, with each decoder stage of a tile
  run only within its own reach of the region (what the pipeline does), against every stage within
  the first stage's reach (one decode window, the pipeline before 2026-11-29 evening) and against
  whole-tile decodes, and their largest differences;
- one 256 px tile with its pattern's adapter as peft's LoRA layers against merged into the layers'
  weights (what a restore on the CPU does), encoder + UNet and both ends;
- with every core (the pipeline's workers, one tile each): the bench's 24 new 512x512 regions
  of the 12 MP file at the default tiling (``rddm bench``'s positions), mean and slowest, three ways
  interleaved: LoRA layers and waves of one tile per worker (the pipeline before 2026-11-30
  noon), merged adapters in such waves, and merged adapters with a region's tiles in one wave
  (what the pipeline does);
- where the CPU computes bfloat16 (AVX512-BF16 or AMX): one 256 px tile and the same 24 regions in
  fp32 against bf16 (``--precision bf16``), interleaved, and the largest difference of a region;
  and in bf16 three regions of the bundled sample against its full restore;
- ``rddm.model.fast``'s forwards (a restore on the CPU) against diffusers' own: one 244 px tile
  on one thread, the 24 regions with every core, interleaved, and the largest difference of their
  ends; with ``--whole`` also a whole 12 MP restore, twice each way;
- whether int8 would pay: the share of oneDNN's convolutions in one 256 px tile's time (both ends,
  ``torch.profiler``), and the model's most frequent 3x3 convolutions (32 -> 32 and 64 -> 32 at
  packed resolution, 64 -> 64 at half of it, on a 256 px tile) in float32 as a restore runs them
  against torch's quantized int8 convolution (per-channel weights, uint8 activations) under each
  quantized engine this torch has, alone and with the activation's quantization and the output's
  dequantization that a float network around it would need; from both, the time of a tile with every
  convolution in int8.

    python scripts/tile_timing.py [--model rddm-tiny] [--repeats 6] [--out out/tile-timing]
        [--sections stages memory-format regions merged waves precision fast int8] [--whole]
"""

from __future__ import annotations

import argparse
import functools
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


def _tile_difference(first, second, planes) -> float:
    """The largest difference between two pipelines' ends of one RGGB tile."""
    return max(
        float((a - b).abs().max())
        for a, b in zip(
            first._run_tile(planes, "RGGB", True, True),
            second._run_tile(planes, "RGGB", True, True),
            strict=True,
        )
    )


@torch.no_grad()
def memory_format(model: str, repeats: int) -> None:
    plain = load_pipeline(model)  # as loaded: torch's default (NCHW) layout
    fast = load_pipeline(model).to("cpu")  # channels-last on the CPU
    for pipeline in (plain, fast):
        pipeline.activate_adapter("RGGB")
    planes = torch.rand(1, 4, 256, 256, generator=torch.Generator().manual_seed(0))
    difference = _tile_difference(plain, fast, planes)
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
    staged = pipeline.decode_reaches("RGGB")

    def whole_tiles(tiles, *args):
        return [None] * len(tiles)

    def restore(variant, roi):
        windows, reaches = variant
        pipeline._windows, pipeline._decode_reach = windows, reaches
        try:
            return pipeline.restore_ends(raw, roi=roi, tile_size=256, tile_overlap=32)
        finally:
            pipeline._windows, pipeline._decode_reach = trimmed, staged

    variants = {
        "staged": (trimmed, staged),  # what the pipeline does: each stage within its own reach
        "one window": (trimmed, (staged[0],) * len(staged)),  # every stage within the first reach
        "whole": (whole_tiles, staged),
    }
    rois = [(600 + 400 * (index % 7), 1200 + 8 * (index // 7), 512, 512) for index in range(repeats + 1)]
    ends = {name: restore(variant, rois[0]) for name, variant in variants.items()}
    difference = {
        name: max(
            np.abs(getattr(ends[name], end) - getattr(ends["whole"], end)).max()
            for end in ("fidelity", "restored")
        )
        for name in ("staged", "one window")
    }
    times = {name: [] for name in variants}
    for roi in rois:  # a new region each time (no cache in the pipeline anyway)
        for name, variant in variants.items():
            times[name].append(_seconds(lambda roi=roi, variant=variant: restore(variant, roi)))
    median = {name: statistics.median(values[1:]) for name, values in times.items()}
    print(
        f"512x512 region, both ends: staged decodes {median['staged']:.2f} s, one decode window "
        f"{median['one window']:.2f} s, whole-tile decodes {median['whole']:.2f} s "
        f"(x{median['staged'] / median['whole']:.2f}); outputs differ from whole-tile decodes by at most "
        f"{difference['staged']:.1e} (one window {difference['one window']:.1e}); decoder reaches "
        f"{', '.join(str(reach) for reach in staged)} packed px"
    )


@torch.no_grad()
def merged_adapter(model: str, repeats: int) -> None:
    layers, merged = load_pipeline(model).to("cpu"), load_pipeline(model).to("cpu")
    layers.activate_adapter("RGGB")
    merged.activate_adapter("RGGB", merged=True)
    planes = torch.rand(1, 4, 256, 256, generator=torch.Generator().manual_seed(0))
    difference = _tile_difference(layers, merged, planes)
    times = _interleaved(
        {
            "layers encode": lambda: layers._encode_tile(planes, True),
            "merged encode": lambda: merged._encode_tile(planes, True),
            "layers tile": lambda: layers._run_tile(planes, "RGGB", True, True),
            "merged tile": lambda: merged._run_tile(planes, "RGGB", True, True),
        },
        repeats,
    )
    print(
        f"one 256 px tile, adapter as LoRA layers against merged: encoder + UNet "
        f"{times['layers encode']:.3f} s against {times['merged encode']:.3f} s, both ends "
        f"{times['layers tile']:.3f} s against {times['merged tile']:.3f} s; outputs differ by at most "
        f"{difference:.1e}"
    )


def region_waves(model: str, folder: Path, threads: int) -> None:
    import rddm.model.pipeline as module
    from rddm.evaluate.bench import SIZES, bench_regions, region_tiles
    from rddm.model.tiling import tile_grid
    from rddm.restore import packed_tiling

    torch.set_num_threads(threads)
    pipeline = load_pipeline(model).to("cpu")
    tile_size, overlap = packed_tiling(pipeline)
    raw = read_raw(bench_raw(folder, "12MP", *SIZES["12MP"]))
    grid = tile_grid(raw.height // 2, raw.width // 2, tile_size, overlap, pipeline.tile_multiple)
    rois = bench_regions(raw.width, raw.height, 25)
    wave, inference = module.REGION_WAVE, pipeline._inference_adapter

    def restore(merge: bool, one_wave: bool, roi):
        module.REGION_WAVE = wave if one_wave else 1
        pipeline._inference_adapter = inference if merge else pipeline.activate_adapter
        try:
            return pipeline.restore_ends(raw, roi=roi, tile_size=tile_size, tile_overlap=overlap)
        finally:
            module.REGION_WAVE, pipeline._inference_adapter = wave, inference

    variants = {
        "LoRA layers, waves of one tile per worker": (False, False),
        "merged, waves of one tile per worker": (True, False),
        "merged, one wave": (True, True),
    }
    times = {name: [] for name in variants}
    for roi in rois:
        for name, variant in variants.items():
            times[name].append(_seconds(lambda roi=roi, variant=variant: restore(*variant, roi)))
    tiles = [region_tiles(grid, x, y) for x, y, *_ in rois[1:]]
    print(
        f"24 new 512x512 regions, {threads} workers, tiles {tile_size}/{overlap} "
        f"({tiles.count(4)} touch 4 tiles, {tiles.count(6)} six, {tiles.count(9)} nine), mean / slowest: "
        + "; ".join(
            f"{name} {statistics.mean(values[1:]):.3f} / {max(values[1:]):.3f} s"
            for name, values in times.items()
        )
    )


@torch.no_grad()
def precision(model: str, folder: Path, repeats: int, threads: int) -> None:
    from rddm.evaluate.bench import SIZES, bench_regions
    from rddm.model.pipeline import cpu_has_bfloat16
    from rddm.restore import packed_tiling

    if not cpu_has_bfloat16():
        print("bf16: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX); not timed")
        return
    pipelines = {
        "fp32": load_pipeline(model).to("cpu"),
        "bf16": load_pipeline(model).to("cpu", torch.bfloat16),
    }
    planes = torch.rand(1, 4, 256, 256, generator=torch.Generator().manual_seed(0))
    torch.set_num_threads(1)
    for pipeline in pipelines.values():
        pipeline.activate_adapter("RGGB", merged=True)
    tile = _interleaved(
        {name: lambda p=p: p._run_tile(planes, "RGGB", True, True) for name, p in pipelines.items()},
        repeats,
    )
    torch.set_num_threads(threads)
    raw = read_raw(bench_raw(folder, "12MP", *SIZES["12MP"]))
    tile_size, overlap = packed_tiling(pipelines["fp32"])
    times = {name: [] for name in pipelines}
    difference = 0.0
    for roi in bench_regions(raw.width, raw.height, 25):
        ends = {}
        for name, pipeline in pipelines.items():
            started = time.perf_counter()
            ends[name] = pipeline.restore_ends(raw, roi=roi, tile_size=tile_size, tile_overlap=overlap)
            times[name].append(time.perf_counter() - started)
        difference = max(difference, float(np.abs(ends["bf16"].restored - ends["fp32"].restored).max()))
    sample = read_raw(Path(__file__).resolve().parents[1] / "engine" / "rddm" / "data" / "sample.dng")
    whole = pipelines["bf16"].restore_ends(sample, tile_size=tile_size, tile_overlap=overlap)
    region_error = 0.0
    for x, y, width, height in [(100, 60, 300, 200), (333, 201, 256, 256), (0, 0, 512, 512)]:
        part = pipelines["bf16"].restore_ends(
            sample, roi=(x, y, width, height), tile_size=tile_size, tile_overlap=overlap
        )
        for end in ("fidelity", "restored"):
            ours = getattr(part, end)
            theirs = getattr(whole, end)[y : y + height, x : x + width]
            region_error = max(region_error, float(np.abs(ours - theirs).max()))
    print(
        f"bf16: three regions of the bundled sample against its full restore ({tile_size}/{overlap}): "
        f"at most {region_error:.1e}"
    )
    print(
        f"fp32 against bf16: one 256 px tile, both ends, one thread {tile['fp32']:.3f} s against "
        f"{tile['bf16']:.3f} s; the 24 regions, {threads} workers, mean / slowest "
        f"{statistics.mean(times['fp32'][1:]):.3f} / {max(times['fp32'][1:]):.3f} s against "
        f"{statistics.mean(times['bf16'][1:]):.3f} / {max(times['bf16'][1:]):.3f} s; restored ends differ "
        f"by at most {difference:.1e}"
    )


def fast_forwards(model: str, folder: Path, repeats: int, threads: int, whole: bool) -> None:
    """rddm.model.fast's forwards (what a restore on the CPU runs) against diffusers' own."""
    from rddm.evaluate.bench import SIZES, bench_regions
    from rddm.model.fast import diffusers_forward
    from rddm.restore import packed_tiling

    pipeline = load_pipeline(model).to("cpu")
    planes = torch.rand(1, 4, 244, 244, generator=torch.Generator().manual_seed(0))
    pattern = pipeline.route_pattern("RGGB")[0]
    pipeline._inference_adapter(pattern)

    def diffusers(function):
        def run():
            with diffusers_forward():
                return function()

        return run

    def tile():
        return pipeline._run_tile(planes, pattern, True, True)

    torch.set_num_threads(1)
    one = _interleaved({"fast": tile, "diffusers": diffusers(tile)}, repeats)
    torch.set_num_threads(threads)
    raw = read_raw(bench_raw(folder, "12MP", *SIZES["12MP"]))
    tile_size, overlap = packed_tiling(pipeline)
    times = {"fast": [], "diffusers": []}
    difference = 0.0
    for index, roi in enumerate(bench_regions(raw.width, raw.height, 25)):
        ends = {}
        for name in ("fast", "diffusers") if index % 2 else ("diffusers", "fast"):
            restore = functools.partial(
                pipeline.restore_ends, raw, roi=roi, tile_size=tile_size, tile_overlap=overlap
            )
            started = time.perf_counter()
            ends[name] = restore() if name == "fast" else diffusers(restore)()
            times[name].append(time.perf_counter() - started)
        for end in ("fidelity", "restored"):
            gap = np.abs(getattr(ends["fast"], end) - getattr(ends["diffusers"], end)).max()
            difference = max(difference, float(gap))
    print(
        f"rddm.model.fast against diffusers' forwards: one 244 px tile, both ends, one thread "
        f"{one['fast']:.3f} s against {one['diffusers']:.3f} s (x{one['fast'] / one['diffusers']:.2f}); "
        f"the 24 regions, {threads} workers, mean / slowest {statistics.mean(times['fast'][1:]):.3f} / "
        f"{max(times['fast'][1:]):.3f} s against {statistics.mean(times['diffusers'][1:]):.3f} / "
        f"{max(times['diffusers'][1:]):.3f} s; ends differ by at most {difference:.1e}"
    )
    if whole:  # the whole 12 MP file at strength 0.5, twice each, alternating
        seconds = {"fast": [], "diffusers": []}
        for name in ("fast", "diffusers", "diffusers", "fast"):
            restore = functools.partial(pipeline, raw, 0.5, tile_size=tile_size, tile_overlap=overlap)
            seconds[name].append(_seconds(restore if name == "fast" else diffusers(restore)))
        print(
            "a whole 12 MP restore (s=0.5): "
            + "; ".join(
                f"{name} {' / '.join(f'{value:.1f}' for value in values)} s"
                for name, values in seconds.items()
            )
        )


@torch.no_grad()
def int8_convolutions(model: str, repeats: int) -> None:
    import torch.ao.nn.quantized as quantized
    from torch.profiler import profile

    pipeline = load_pipeline(model).to("cpu")
    pipeline.activate_adapter("RGGB")
    planes = torch.rand(1, 4, 256, 256, generator=torch.Generator().manual_seed(0))
    pipeline._run_tile(planes, "RGGB", True, True)
    with profile() as profiled:
        pipeline._run_tile(planes, "RGGB", True, True)
    events = profiled.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    convolutions = [event for event in events if event.key == "aten::mkldnn_convolution"]
    share = sum(event.self_cpu_time_total for event in convolutions) / total
    print(f"oneDNN's convolutions: {100 * share:.0f}% of one 256 px tile's CPU time (both ends, one thread)")
    generator = torch.Generator().manual_seed(0)
    best = []
    for channels_in, channels_out, size in ((32, 32, 256), (64, 32, 256), (64, 64, 128)):
        sample = torch.randn(1, channels_in, size, size, generator=generator)
        sample = sample.contiguous(memory_format=torch.channels_last)
        conv = torch.nn.Conv2d(channels_in, channels_out, 3, padding=1).to(memory_format=torch.channels_last)
        variants = {"float32": functools.partial(conv, sample)}
        for engine in torch.backends.quantized.supported_engines:
            if engine == "qnnpack":  # the mobile kernels, not what a desktop CPU runs best
                continue
            torch.backends.quantized.engine = engine
            scales = conv.weight.abs().amax(dim=(1, 2, 3)) / 127
            zeros = torch.zeros(channels_out, dtype=torch.long)
            weight = torch.quantize_per_channel(conv.weight, scales, zeros, 0, torch.qint8)
            int8 = quantized.Conv2d(channels_in, channels_out, 3, padding=1)
            int8.set_weight_bias(weight, conv.bias)
            int8.scale, int8.zero_point = 0.05, 128
            held = torch.quantize_per_tensor(sample, 0.05, 128, torch.quint8)

            def alone(int8=int8, held=held, engine=engine):
                torch.backends.quantized.engine = engine
                return int8(held)

            def around(int8=int8, engine=engine, sample=sample):
                torch.backends.quantized.engine = engine
                return int8(torch.quantize_per_tensor(sample, 0.05, 128, torch.quint8)).dequantize()

            variants[f"int8 {engine}"] = alone
            variants[f"int8 {engine} + (de)quantize"] = around
        times = _interleaved(variants, repeats)
        base = times["float32"]
        print(
            f"3x3 conv {channels_in} -> {channels_out} on {size} px: float32 {1000 * base:.1f} ms; "
            + "; ".join(f"{name} {1000 * value:.1f} ms (x{value / base:.2f})" for name, value in times.items()
                        if name != "float32")
        )  # fmt: skip
        best.append(min(value for name, value in times.items() if name.endswith("(de)quantize")) / base)
    ratio = max(best)
    print(
        f"so a tile with every convolution in int8 (x{ratio:.2f}, the least gain of these shapes) would take "
        f"about x{1 - share + share * ratio:.2f} of its time"
    )


SECTIONS = ("stages", "memory-format", "regions", "merged", "waves", "precision", "fast", "int8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="rddm-tiny")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--out", default="out/tile-timing", help="folder for the synthesized 12 MP file")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--whole", action="store_true", help="fast: also two whole 12 MP restores each way")
    args = parser.parse_args()
    run = set(args.sections)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    if "stages" in run:
        pipeline = load_pipeline(args.model).to("cpu")
        pipeline.activate_adapter("RGGB")
        stages(pipeline, args.repeats)
    if "memory-format" in run:
        memory_format(args.model, args.repeats)
    if "regions" in run:
        regions(args.model, folder, args.repeats)
    if "merged" in run:
        merged_adapter(args.model, args.repeats)
    if "waves" in run:
        region_waves(args.model, folder, threads)
    if "precision" in run:
        precision(args.model, folder, args.repeats, threads)
    if "fast" in run:
        torch.set_num_threads(1)
        fast_forwards(args.model, folder, args.repeats, threads, args.whole)
    if "int8" in run:
        int8_convolutions(args.model, args.repeats)


if __name__ == "__main__":
    main()
