"""The issue's PSNR bars, per pattern: a model's mean PSNR at strength 0.5 minus the best classical
chain's (each chain at its best denoiser strength per level, ``best_classical``; darktable's chain
as it ran), per dataset, level and Bayer pattern, from an `rddm eval` run's results.json. Prints
the smallest and largest margin over the four patterns, and the model's mean PSNR and ST-LPIPS.

    python scripts/bar_margins.py out/eval-subset/results.json MODEL [MODEL ...]
        [--against OTHER/results.json OTHER_MODEL]

MODEL is the name the run gave the model (``--model NAME=PATH``; the bare name otherwise).
``--against`` also prints each model's gain per level and pattern over a model of another run on
the same pairs (``rddm eval``'s pairs are deterministic), e.g. a run of model rows only against the
run whose classical rows the margins above were read from. A run without classical rows prints
the models' rows and those gains only.
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
    parser.add_argument("--against", nargs=2, metavar=("RESULTS", "MODEL"))
    args = parser.parse_args()
    rows = json.loads(args.results.read_text())["rows"]
    chosen = best_classical(rows)
    chains = sorted({r["method"] for r in chosen if "denoise" in r or "darktable" in r["method"]})
    levels = [level for level in NOISE_LEVELS if any(r["level"] == level for r in rows)]

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
            psnr = " / ".join(f"{mean(rows, dataset, method, level):.2f}" for level in levels)
            lpips = " / ".join(f"{mean(rows, dataset, method, level, key='stlpips'):.3f}" for level in levels)
            print(f"  {method}: PSNR {psnr}; ST-LPIPS {lpips}")
            if args.against:
                other = json.loads(Path(args.against[0]).read_text())["rows"]
                base = f"{args.against[1]} s=0.5"
                for level in levels:
                    gains = [
                        mean(rows, dataset, method, level, pattern)
                        - mean(other, dataset, base, level, pattern)
                        for pattern in CFA_PATTERNS
                    ]
                    print(f"    {level}: per pattern over {base} {min(gains):+.3f}..{max(gains):+.3f}")
            for level in levels if chains else ():
                margins = [
                    mean(rows, dataset, method, level, pattern)
                    - max(mean(chosen, dataset, chain, level, pattern) for chain in chains)
                    for pattern in CFA_PATTERNS
                ]
                print(f"    {level}: per pattern vs best chain {min(margins):+.2f}..{max(margins):+.2f}")
        for chain in chains:
            psnr = " / ".join(f"{mean(chosen, dataset, chain, level):.2f}" for level in levels)
            lpips = " / ".join(
                f"{mean(chosen, dataset, chain, level, key='stlpips'):.3f}" for level in levels
            )
            print(f"  {chain}: PSNR {psnr}; ST-LPIPS {lpips}")


if __name__ == "__main__":
    main()
