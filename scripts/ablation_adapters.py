"""CMB-LoRA against one shared model and against canonicalisation, all trained equally (`make
ablation-adapters`, `make ablation-scratch`).

The evaluation's "adapters off" row switches the adapters off a model that was trained with them,
which is not a model trained without them. By default this script gives the ablation a fairer
footing without two from-scratch runs: from the shipped weights it trains, for the same steps,
with the same data, seed and schedule,

- ``with-adapters``: the shipped model with its four adapters (all parts learn), and
- ``shared``: the same base weights with the adapters removed (one model for every pattern),
- ``canonical``: the same base weights without adapters, trained on RGGB mosaics only (the same
  data otherwise); at restore time every other pattern is shifted by a row and/or column onto
  RGGB (canonicalisation by shifting, in training and in use),

then scores them with ``rddm eval`` on the README's subset, with the adapter model's row for
canonicalisation by shifting (classical rows reused from an earlier ``results.json`` when
given). The shared model gets the same steps to adapt to running without adapters; if the adapters
still win, they win.

With ``--from-scratch`` both start from fresh weights instead (``rddm-tiny.yaml`` as committed, the
same seed, its learning rate unless ``--learning-rate`` is given): the fair form of the ablation,
one model trained with CMB-LoRA, one trained without adapters and one trained on RGGB only, equal
in everything else.

``--sides`` trains only some of them (the others' models already in ``--out`` are scored too);
runs side by side get one thread each, a run alone two (``--threads`` otherwise). A run whose
checkpoints are in ``--out`` resumes from the last one (one already at its end only exports).

    python scripts/ablation_adapters.py --out runs/ablation [--steps 500] [--classical-from JSON]
    python scripts/ablation_adapters.py --from-scratch --steps 6000 --out runs/ablation-scratch
    python scripts/ablation_adapters.py --from-scratch --steps 6000 --out runs/ablation-scratch \
        --sides canonical
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rddm.model.registry import DEFAULT_MODEL, MODELS_DIR
from rddm.train.config import CONFIG_DIR

SIDES = ("with-adapters", "shared", "canonical")


def shared_start(folder: Path) -> Path:
    """The shipped model's folder without its adapters (its base weights are stored plainly)."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(
        MODELS_DIR / DEFAULT_MODEL, folder, ignore=shutil.ignore_patterns("adapters", "README.md")
    )
    index = json.loads((folder / "model_index.json").read_text())
    index["adapters"] = []
    (folder / "model_index.json").write_text(json.dumps(index, indent=1))
    return folder


def config_for(
    name: str,
    start: Path | None,
    parts: list[str],
    steps: int,
    learning_rate: float | None,
    canonical: str | None = None,
    threads: int = 1,
) -> dict:
    """rddm-tiny.yaml for one side: from ``start``'s weights, or fresh ones (adapters as ``parts``
    say) when ``start`` is None; the learning rate is the config's own when None; trained on the
    ``canonical`` pattern only when given."""
    config = yaml.safe_load((CONFIG_DIR / "rddm-tiny.yaml").read_text())
    config["name"] = f"rddm-tiny-{name}"
    if start is None:
        config["model"]["adapters"] = "adapters" in parts
    else:
        config["model"]["from_folder"] = str(start)
    if canonical:
        config["model"]["canonical_pattern"] = canonical
    stage = config["stages"][0]
    if learning_rate is None:
        learning_rate = stage["learning_rate"]
    config["stages"] = [{**stage, "steps": steps, "train": parts, "learning_rate": learning_rate}]
    config["threads"] = threads  # runs side by side get one core each
    config["validate_every"] = config["checkpoint_every"] = max(50, steps // 4)
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ablation-adapters"))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument(
        "--learning-rate", type=float, help="peak learning rate (default 2e-4, from scratch the config's)"
    )
    parser.add_argument(
        "--from-scratch", action="store_true", help="every side from fresh weights, not the shipped ones"
    )
    parser.add_argument("--classical-from", help="results.json with the subset's classical rows")
    parser.add_argument(
        "--sides",
        nargs="+",
        choices=SIDES,
        default=list(SIDES),
        help="which to train (default all; models of the others already in --out are scored too)",
    )
    parser.add_argument(
        "--threads", type=int, help="torch threads per run (default: 1 side by side, 2 alone)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    rddm = str(bin_dir / "rddm")
    learning_rate = args.learning_rate
    if args.from_scratch:
        starts = (None, None)
    else:
        without = shared_start(args.out / "shared-start") if set(args.sides) - {"with-adapters"} else None
        starts = (MODELS_DIR / DEFAULT_MODEL, without)
        learning_rate = learning_rate or 2e-4
    base = ["rvae_encoder", "rvae_decoder", "unet"]
    sides = {
        "with-adapters": (starts[0], [*base, "adapters"], None),
        "shared": (starts[1], base, None),
        "canonical": (starts[1], base, "RGGB"),
    }
    runs = {name: sides[name] for name in SIDES if name in args.sides}
    # Two threads of one run on a core another process holds slow it ten-fold (seen here).
    threads = args.threads or (1 if len(runs) > 1 else 2)
    processes, logs = {}, []
    for name, (start, parts, canonical) in runs.items():
        config_path = args.out / f"{name}.yaml"
        config = config_for(name, start, parts, args.steps, learning_rate, canonical, threads)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        logs.append((args.out / f"{name}.out").open("w"))
        command = [rddm, "train", "--config", str(config_path), "--out", str(args.out / name), "--quiet"]
        processes[name] = subprocess.Popen(command, stdout=logs[-1], stderr=subprocess.STDOUT)
    failed = [name for name, process in processes.items() if process.wait() != 0]
    for log in logs:
        log.close()
    if failed:
        print(f"error: training {', '.join(failed)} failed (see {args.out}/<name>.out)", file=sys.stderr)
        return 1
    for name in runs:
        validation = [
            json.loads(line)
            for line in (args.out / name / "log.jsonl").read_text().splitlines()
            if "val_psnr_restored" in line
        ]
        print(
            f"{name}: validation PSNR (restored end) {validation[0]['val_psnr_restored']:.2f} -> "
            f"{validation[-1]['val_psnr_restored']:.2f} dB at step {validation[-1]['step']}"
        )
    scored = [name for name in SIDES if (args.out / name / "model" / "model_index.json").is_file()]
    command = [rddm, "eval", "--model"]
    command += [f"{name}={args.out / name / 'model'}" for name in scored]
    command += ["--images", "4", "--crop", "256", "--strengths", "0.5", "--bm3d-after", "dht"]
    command += ["--canonical-shift"]  # the adapter model's "RGGB adapter + shift" row (shared: none)
    command += ["--out", str(args.out / "eval"), "--quiet"]
    if shutil.which("darktable-cli"):
        command.append("--darktable")
    if args.classical_from:
        command += ["--classical-from", args.classical_from]
    result = subprocess.run(command)
    print(f"report: {args.out / 'eval' / 'report.md'}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
