"""The README's evaluation figures from an earlier ``rddm eval`` run: the PSNR-against-noise plot
of one model's rows (the run's other models left out, the label renamed to the model's name) and
the crop mosaic made again with that model's folder, both as written into ``docs/``.

    python scripts/eval_figures.py out/eval-sat4 --model sat4=rddm-tiny [--docs docs]

The plot and the report are written into ``OUT/figures`` first (write_report's tables of those rows
come with them); the mosaic re-runs the classical chains and darktable on its one pair (33 s for
the README's run). Nothing else is evaluated again: the rows are the run's.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from PIL import Image

from rddm.evaluate.run import EvalSettings, crop_mosaic, write_report
from rddm.model.registry import load_pipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path, help="an rddm eval output folder (its results.json)")
    parser.add_argument("--model", required=True, help="LABEL=NAME: the run's label, the model to name it by")
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    label, _, name = args.model.partition("=")
    if not name:
        parser.error("--model needs LABEL=NAME, e.g. sat4=rddm-tiny")
    results = json.loads((args.run / "results.json").read_text(encoding="utf-8"))
    settings = EvalSettings.from_results(results)
    pipeline = load_pipeline(name).to("cpu")
    shown = pipeline.info.get("name", name)
    classical = [row for row in results["rows"] if "denoise" in row]  # darktable's rows have it too
    model = [  # the model alone, not its ablations, under its own name
        {**row, "method": shown + row["method"][len(label) :]}
        for row in results["rows"]
        if row["method"].startswith(f"{label} s=")
    ]
    if not model:
        raise SystemExit(f"{args.run / 'results.json'}: no rows of a model labelled {label!r}")
    rows = model + classical
    out = args.run / "figures"
    write_report(rows, settings, out, f"scripts/eval_figures.py {args.run} --model {args.model}")
    crop_mosaic({shown: pipeline}, settings, out)
    args.docs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "psnr_vs_noise.png", args.docs / "eval-psnr.png")
    Image.open(out / "crops.png").convert("RGB").save(args.docs / "eval-crops.jpg", quality=90)
    print(f"{args.docs / 'eval-psnr.png'}, {args.docs / 'eval-crops.jpg'} (and {out})")


if __name__ == "__main__":
    main()
