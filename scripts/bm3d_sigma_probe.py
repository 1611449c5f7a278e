"""Is the evaluation's BM3D grid fine enough? DHT + BM3D's mean PSNR at extra sigmas on one dataset
and noise level of an `rddm eval` run's pairs, beside the grid's best (from its results.json), to see
how much a finer or wider grid would raise the best classical chain.

    python scripts/bm3d_sigma_probe.py out/eval-subset/results.json kodak24 mid 0.03
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from rddm.color import render_srgb
from rddm.evaluate.baselines import denoise_bm3d, libraw_demosaic
from rddm.evaluate.run import EvalSettings, _centre_crop, _one_thread, _pair, best_classical, psnr
from rddm.raw.cfa import CFA_PATTERNS
from rddm.synth.dataset import list_images, read_srgb


def _one(job) -> dict:
    settings, dataset_index, path, level, pattern, sigmas = job
    sources = [(Path(f).name, p) for f in settings.datasets for p in list_images(f)[: settings.images]]
    keys = (sources.index(dataset_index), settings.levels.index(level), CFA_PATTERNS.index(pattern))
    image = _centre_crop(read_srgb(path), settings.crop)
    pair = _pair(image, level, pattern, settings.seed, keys, settings.mosaic)
    reference = render_srgb(pair.hq, pair.xyz_to_cam)
    srgb = render_srgb(
        libraw_demosaic(pair.lq_cfa, pattern, pair.wb_gains, pair.xyz_to_cam, "dht"), pair.xyz_to_cam
    )
    return {sigma: psnr(denoise_bm3d(srgb, sigma), reference) for sigma in sigmas}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("dataset")
    parser.add_argument("level")
    parser.add_argument("sigmas", type=float, nargs="+")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    settings = EvalSettings.from_results(results)
    folder = next(f for f in settings.datasets if Path(f).name == args.dataset)
    jobs = [
        (settings, (args.dataset, path), path, args.level, pattern, tuple(args.sigmas))
        for path in list_images(folder)[: settings.images]
        for pattern in settings.patterns
    ]
    context = multiprocessing.get_context("spawn")  # as rddm eval: thread pools do not survive a fork
    with ProcessPoolExecutor(args.workers, mp_context=context, initializer=_one_thread) as pool:
        found = list(pool.map(_one, jobs))
    grid = [
        r
        for r in best_classical(results["rows"])
        if (r["dataset"], r["level"], r["method"]) == (args.dataset, args.level, "dht+bm3d")
    ]
    print(
        f"{args.dataset} {args.level}: DHT + BM3D at the grid's best sigma ({grid[0]['denoise']:g}) "
        f"{np.mean([r['psnr'] for r in grid]):.2f} dB over {len(grid)} pairs"
    )
    for sigma in args.sigmas:
        print(f"  sigma {sigma:g}: {np.mean([f[sigma] for f in found]):.2f} dB over {len(found)} pairs")


if __name__ == "__main__":
    main()
