"""One prepared run on a lent GPU: CUDA correctness, rddm-tiny timings, rddm-sd21 at SD 2.1-base's own
widths (random weights) and a training run of rddm-tiny within a time budget.

Usage (the repository root on PYTHONPATH's ``engine``; every figure lands in OUT/results.json):

    python scripts/gpu_check.py --out OUT --raw FILE.dng --photo kodim05.png --data TRAIN_DIR \\
        --budget 520 --train-seconds 250

On the project's lent GPU machine (nothing can be installed there): copy the downscaled training
photos, the RAW and the photo into an ignored folder (``.gpudata``) and download wheels into ``.whl``
for what its image lacks (diffusers, peft, piq, rawpy, exifread, platformdirs; cp312 manylinux), carry
both, install the wheels with ``pip install --no-index --no-deps --target /tmp/site .whl/*.whl`` and
put ``/tmp/site`` and ``engine`` on PYTHONPATH. The first lease (2026-11-28) lacked piq, so its
training phase failed at the import; the second call ran the training phase alone.

Each phase is guarded: one that fails is recorded with its error and the next one runs; a phase that
would not fit in what is left of ``--budget`` seconds is skipped. ``--device cpu --quick`` runs every
phase at toy sizes (a check of this script without a GPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

STARTED = time.perf_counter()
RESULTS: dict = {}


def elapsed() -> float:
    return time.perf_counter() - STARTED


def save(out: Path) -> None:
    (out / "results.json").write_text(json.dumps(RESULTS, indent=1))


def phase(name: str, out: Path, needs: float, budget: float):
    """Run a phase when ``needs`` seconds are left of ``budget``; record its result or error."""

    def wrap(function):
        if budget - elapsed() < needs:
            RESULTS[name] = {"skipped": f"{budget - elapsed():.0f} s left, needs {needs:.0f}"}
        else:
            began = time.perf_counter()
            try:
                RESULTS[name] = function()
            except Exception as error:  # noqa: BLE001 - every phase reports, the next one runs
                RESULTS[name] = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()}
            RESULTS.setdefault(name, {})
            if isinstance(RESULTS[name], dict):
                RESULTS[name]["phase_seconds"] = round(time.perf_counter() - began, 1)
        print(f"[{elapsed():6.1f} s] {name}: {json.dumps(RESULTS[name])[:600]}", flush=True)
        save(out)
        return function

    return wrap


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return round(10 * math.log10(1 / mse), 2) if mse > 0 else float("inf")


def peak_gb(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--raw", required=True, help="a real RAW (the correctness checks)")
    parser.add_argument("--photo", required=True, help="an sRGB photo the 24 MP test RAW is made of")
    parser.add_argument("--data", required=True, help="training photos")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget", type=float, default=520)
    parser.add_argument("--train-seconds", type=float, default=250)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    out, device, quick = args.out, args.device, args.quick
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="rddm-gpu-"))
    dtypes = ["fp32", "fp16", "bf16"] if device == "cuda" else ["fp32"]

    from rddm.evaluate.bench import SIZES, bench_raw
    from rddm.model.registry import load_pipeline
    from rddm.raw import read_raw

    RESULTS["env"] = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "cpu_count": os.cpu_count(),
    }
    print(RESULTS["env"], flush=True)

    def tiny(dtype: str):
        return load_pipeline("rddm-tiny").to(device, DTYPES[dtype])

    @phase("correctness", out, 30, args.budget)
    def _():
        raw = read_raw(args.raw)
        reference = load_pipeline("rddm-tiny").restore_ends(raw, tile_size=128, tile_overlap=32)
        result = {"raw": Path(args.raw).name, "shape": list(raw.cfa.shape), "pattern": raw.cfa_pattern}
        for name in dtypes:
            pipeline = tiny(name)
            first = pipeline.restore_ends(raw, tile_size=128, tile_overlap=32)
            again = pipeline.restore_ends(raw, tile_size=128, tile_overlap=32)
            whole = pipeline.restore_ends(raw, tile_size=1024, tile_overlap=32)
            x, y = raw.cfa.shape[1] // 3 // 2 * 2, raw.cfa.shape[0] // 3 // 2 * 2
            roi = pipeline.restore_ends(raw, roi=(x, y, 256, 192), tile_size=128, tile_overlap=32)
            result[name] = {
                "vs_cpu_fp32_max_abs": max(
                    float(np.abs(a - b).max())
                    for a, b in ((first.fidelity, reference.fidelity), (first.restored, reference.restored))
                ),
                "vs_cpu_fp32_psnr_restored": psnr(first.restored, reference.restored),
                "deterministic": bool(
                    np.array_equal(first.restored, again.restored)
                    and np.array_equal(first.fidelity, again.fidelity)
                ),
                "tiled_128_vs_whole_max_abs": float(np.abs(first.restored - whole.restored).max()),
                "roi_vs_full_max_abs": float(
                    np.abs(roi.restored - first.restored[y : y + 192, x : x + 256]).max()
                ),
                "finite": bool(np.isfinite(first.restored).all()),
            }
        return result

    @phase("train", out, 60, args.budget)
    def _():
        return train_phase(args, scratch, out, quick)

    big = (1200, 800) if quick else SIZES["24MP"]

    @phase("sd21", out, 60, args.budget)
    def _():
        return sd21_phase(scratch, out, device, dtypes, big, args.photo, quick)

    @phase("tiny_speed", out, 40, args.budget)
    def _():
        path = bench_raw(scratch, "big", *big, source=args.photo)
        raw = read_raw(path)
        result = {"size": f"{big[0]}x{big[1]}"}
        for name in [d for d in dtypes if d != "fp32"] or ["fp32"]:
            pipeline = tiny(name)
            from rddm.restore import packed_tiling

            tile_size, overlap = packed_tiling(pipeline)  # the engine's region tiling; then a warm-up
            pipeline.restore_ends(raw, roi=(0, 0, 512, 512), tile_size=tile_size, tile_overlap=overlap)
            for tile in (256, 512, 1024):
                reset_peak(device)
                sync(device)
                began = time.perf_counter()
                pipeline.restore_ends(raw, tile_size=tile, tile_overlap=32)
                sync(device)
                result[f"{name}_whole_tile{tile}_s"] = round(time.perf_counter() - began, 2)
                result[f"{name}_whole_tile{tile}_peak_gpu_gb"] = peak_gb(device)
            new_roi, change = [], []
            from rddm.color import render_srgb

            for index in range(6):
                roi = (1000 + 512 * (index % 4), 600 + 512 * (index // 4), 512, 512)
                if quick:
                    roi = (64 * index, 64, 512, 512)
                sync(device)
                began = time.perf_counter()
                ends = pipeline.restore_ends(raw, roi=roi, tile_size=tile_size, tile_overlap=overlap)
                sync(device)
                new_roi.append(time.perf_counter() - began)
                for strength in (0.1, 0.35, 0.6, 0.85):
                    began = time.perf_counter()
                    render_srgb(ends.blend(strength), raw.xyz_to_cam)
                    change.append(time.perf_counter() - began)
            result[f"{name}_roi512_s"] = round(float(np.median(new_roi[1:])), 3)
            result[f"{name}_strength_change_ms"] = round(1000 * float(np.median(change)), 1)
        # The whole user command (start-up, load, read, restore, DNG write) against LibRaw AHD.
        from rddm.evaluate.bench import _AHD, measure

        command = [sys.executable, "-c", "import sys; from rddm.cli import main; sys.exit(main())"]
        restore = measure(
            [
                *command,
                "restore",
                str(path),
                "--out",
                str(scratch),
                "--overwrite",
                "--quiet",
                "--device",
                device,
                "--tile",
                "2048",
            ]
        )
        ahd = measure([sys.executable, "-c", _AHD, str(path), str(scratch / "ahd.npy")])
        result["command_restore_s"] = restore["seconds"]
        result["command_peak_rss_mb"] = restore["peak_rss_mb"]
        result["command_ahd_s"] = ahd["seconds"]
        result["command_ratio"] = round(restore["seconds"] / ahd["seconds"], 2)
        return result

    RESULTS["total_seconds"] = round(elapsed(), 1)
    save(out)
    shutil.rmtree(scratch, ignore_errors=True)


def sd21_phase(
    scratch: Path, out: Path, device: str, dtypes: list[str], big, photo: str, quick: bool
) -> dict:
    """rddm-sd21 with SD 2.1-base's widths and random weights: one tile and a whole image per dtype
    (the figures are saved as they come, in case the run's time limit cuts the phase short)."""
    from rddm.evaluate.bench import bench_raw
    from rddm.model.registry import load_pipeline
    from rddm.model.sd21 import build_sd21, write_reduced_base
    from rddm.raw import read_raw

    began = time.perf_counter()
    base = write_reduced_base(scratch / "sd21-base", full_widths=not quick)
    folder = build_sd21(base, scratch / "rddm-sd21")
    result = RESULTS["sd21"] = {"build_s": round(time.perf_counter() - began, 1), "full_widths": not quick}
    raw = read_raw(bench_raw(scratch, "big", *big, source=photo))
    for name in [d for d in dtypes if d != "fp32"] or ["fp32"]:
        pipeline = load_pipeline(folder).to(device, DTYPES[name])
        pipeline.activate_adapter("rggb")
        crop = torch.rand(1, 4, 256, 256, device=device, dtype=DTYPES[name])  # 512x512 full pixels
        with torch.no_grad():
            pipeline._run_tile(crop, "rggb", True, True)  # warm-up
            sync(device)
            reset_peak(device)
            times = []
            for _ in range(3 if quick else 10):
                began = time.perf_counter()
                pipeline._run_tile(crop, "rggb", True, True)
                sync(device)
                times.append(time.perf_counter() - began)
        result[f"{name}_tile512_both_ends_s"] = round(float(np.median(times)), 4)
        result[f"{name}_tile512_peak_gpu_gb"] = peak_gb(device)
        save(out)
        for tile in (256, 512):  # packed pixels: 512 and 1024 full-resolution pixels
            reset_peak(device)
            sync(device)
            began = time.perf_counter()
            ends = pipeline.restore_ends(raw, tile_size=tile, tile_overlap=32)
            sync(device)
            result[f"{name}_whole_tile{2 * tile}_s"] = round(time.perf_counter() - began, 2)
            result[f"{name}_whole_tile{2 * tile}_peak_gpu_gb"] = peak_gb(device)
            result[f"{name}_whole_finite"] = bool(np.isfinite(ends.restored).all())
            save(out)
        del pipeline
    result["size"] = f"{big[0]}x{big[1]}"
    return result


def train_phase(args, scratch: Path, out: Path, quick: bool) -> dict:
    """Measure the step rate of the GPU config, then train for as many steps as fit in
    ``--train-seconds`` (a cosine schedule needs its length up front) and pack the results."""
    import dataclasses

    from rddm.train.config import load_config
    from rddm.train.loop import train

    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
    config = load_config("rddm-tiny-gpu")
    config = dataclasses.replace(config, data_dir=args.data)
    if quick:
        config = dataclasses.replace(config, batch_size=4, crop=64, data_workers=2, validate_every=20)
    began = time.perf_counter()
    probe_steps = 10 if quick else 120
    probe = dataclasses.replace(config, log_every=2 if quick else 10)
    train(probe, scratch / "probe", max_steps=probe_steps, progress=False)
    log = [json.loads(line) for line in (scratch / "probe" / "log.jsonl").read_text().splitlines()]
    timed = [r for r in log if "seconds" in r]
    first, last = timed[1], timed[-1]  # the first steps warm up (allocator, kernels, workers)
    per_step = (last["seconds"] - first["seconds"]) / (last["step"] - first["step"])
    probe_seconds = time.perf_counter() - began
    # Start-up (sources, workers) measured by the probe, plus validations and checkpoints.
    overhead = probe_seconds - last["seconds"] + 15
    left = args.train_seconds - probe_seconds - overhead
    steps = max(100, int(left / per_step) // 100 * 100)
    if quick:
        steps = 40
    stage = dataclasses.replace(config.stages[0], steps=steps)
    config = dataclasses.replace(config, stages=[stage])
    run = scratch / "run"
    began = time.perf_counter()
    train(config, run, progress=False)
    wall = time.perf_counter() - began
    with tarfile.open(out / "rddm-tiny-gpu.tar", "w") as tar:
        tar.add(run / "model", arcname="model")
        tar.add(run / "log.jsonl", arcname="log.jsonl")
        tar.add(run / "config.json", arcname="config.json")
    state = next((run / "checkpoints").glob(f"step_{steps}")) / "state.pt"
    with open(state, "rb") as source:  # the checkpoint (optimizer too), in parts under 16 MB
        for index in range(8):
            chunk = source.read(15 * 2**20)
            if not chunk:
                break
            (out / f"state.pt.part{index}").write_bytes(chunk)
    torch.backends.cudnn.benchmark = False
    validation = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    validation = [r for r in validation if "val_psnr_restored" in r]
    return {
        "probe_seconds_per_step": round(per_step, 4),
        "probe_wall_s": round(probe_seconds, 1),
        "steps": steps,
        "wall_s": round(wall, 1),
        "samples": steps * config.batch_size,
        "validation": validation,
    }


if __name__ == "__main__":
    main()
