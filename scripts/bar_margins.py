"""The issue's PSNR bars, per pattern: a model's mean PSNR at strength 0.5 minus the best classical
chain's (each chain at its best denoiser strength per level, ``best_classical``; darktable's chain
as it ran), per dataset, level and Bayer pattern, from an `rddm eval` run's results.json. Prints
the smallest and largest margin over the four patterns, and the model's mean PSNR and ST-LPIPS.

    python scripts/bar_margins.py out/eval-subset/results.json MODEL [MODEL ...]

MODEL is the name the run gave the model (``--model NAME=PATH``; the bare name otherwise).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rddm.evaluate.run import best_classical
from rddm.raw.cfa import CFA_PATTERNS
from rddm.synth.noise import NOISE_LEVELS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    rows = json.loads(args.results.read_text())["rows"]
    chosen = best_classical(rows)
    chains = sorted({r["method"] for r in chosen if "denoise" in r or "darktable" in r["method"]})

    def mean(source, dataset, method, level, pattern=None, key="psnr"):
        return np.mean(
            [
                r[key]
                for r in source
                if (r["dataset"], r["method"], r["level"]) == (dataset, method, level)
                and pattern in (None, r["pattern"])
            ]
        )

    for dataset in sorted({r["dataset"] for r in rows}):
        print(dataset)
        for model in args.models:
            method = f"{model} s=0.5"
            psnr = " / ".join(f"{mean(rows, dataset, method, level):.2f}" for level in NOISE_LEVELS)
            lpips = " / ".join(
                f"{mean(rows, dataset, method, level, key='stlpips'):.3f}" for level in NOISE_LEVELS
            )
            print(f"  {method}: PSNR {psnr}; ST-LPIPS {lpips}")
            for level in NOISE_LEVELS:
                margins = [
                    mean(rows, dataset, method, level, pattern)
                    - max(mean(chosen, dataset, chain, level, pattern) for chain in chains)
                    for pattern in CFA_PATTERNS
                ]
                print(f"    {level}: per pattern vs best chain {min(margins):+.2f}..{max(margins):+.2f}")
        for chain in chains:
            psnr = " / ".join(f"{mean(chosen, dataset, chain, level):.2f}" for level in NOISE_LEVELS)
            lpips = " / ".join(
                f"{mean(chosen, dataset, chain, level, key='stlpips'):.3f}" for level in NOISE_LEVELS
            )
            print(f"  {chain}: PSNR {psnr}; ST-LPIPS {lpips}")


if __name__ == "__main__":
    main()
