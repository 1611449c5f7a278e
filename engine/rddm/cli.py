"""The `rddm` command line.

Exit status: 0 success, 1 some inputs failed (each reported on its own line), 2 usage error or
nothing could be done. Errors are one line on stderr (``error: <file>: <reason>``), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable

from rddm import __version__
from rddm.errors import RddmError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _cmd_info(args: argparse.Namespace) -> int:
    from rddm.raw import read_raw

    failed = 0
    for path in args.files:
        try:
            summary = read_raw(path).summary()
        except RddmError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(summary))
        else:
            print(f"{summary['path']}")
            for key, value in summary.items():
                if key != "path":
                    print(f"  {key:20s} {value}")
    return EXIT_USAGE if failed else EXIT_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rddm.synth import SynthConfig
    from rddm.synth.dataset import synthesize_directory

    config = SynthConfig(
        cfa_patterns=tuple(args.patterns),
        tone_curve=not args.no_tone_curve,
        noise="none" if args.no_noise else "range",
        defocus_probability=args.defocus,
        motion_probability=args.motion,
        downsample_probability=args.downsample,
    )
    manifest = synthesize_directory(
        args.src_dir,
        args.out_dir,
        config,
        isos=args.iso,
        seed=args.seed,
        crop=args.crop,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=lambda stream, total: tqdm(
            stream, total=total, unit="pair", disable=args.quiet, file=sys.stderr
        ),
    )
    count = len(json.loads(manifest.read_text(encoding="utf-8"))["pairs"])
    print(
        json.dumps({"pairs": count, "manifest": str(manifest)})
        if args.json
        else f"{count} pairs written, manifest {manifest}"
    )
    return EXIT_OK


PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def add_precision(parser: argparse.ArgumentParser) -> None:
    """``--precision``, as every command that loads the model has it."""
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", *PRECISIONS],
        help="auto: fp32 on the CPU, fp16 on CUDA; bf16 on a CPU with AVX512-BF16 or AMX is faster",
    )


def _load_model(name: str, device: str, allow_untrained: bool, precision: str = "auto"):
    from rddm.model.registry import load_pipeline

    pipeline = load_pipeline(name)
    if not pipeline.info.get("trained", False) and not allow_untrained:
        raise RddmError(
            f"model {pipeline.info.get('name', name)} holds untrained weights: it does not restore "
            "anything (train it with `rddm train`)"
        )
    return move_to(pipeline, device, precision)


def move_to(pipeline, device: str, precision: str = "auto"):
    """``pipeline.to(device)`` in ``precision`` (auto, fp32, fp16, bf16); a precision the device
    cannot run is one readable error."""
    import torch

    dtype = None if precision == "auto" else getattr(torch, PRECISIONS[precision])
    try:
        return pipeline.to(device, dtype)
    except ValueError as error:  # half precision the CPU cannot run
        raise RddmError(f"--precision {precision}: {error}") from None


def _cmd_restore(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from rddm.restore import restore_file

    pipeline = _load_model(args.model, args.device, args.allow_untrained, args.precision)
    failed = 0
    for source in tqdm(args.files, unit="file", disable=args.quiet or len(args.files) < 2, file=sys.stderr):
        started = time.perf_counter()
        with tqdm(unit="tile", leave=False, disable=args.quiet, file=sys.stderr, desc=source) as bar:

            def progress(done: int, total: int, bar=bar) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                written = restore_file(
                    pipeline,
                    source,
                    strength=args.strength,
                    fmt=args.format,
                    out_dir=args.out,
                    overwrite=args.overwrite,
                    tile=args.tile,
                    progress=progress,
                )
            except RddmError as error:
                failed += 1
                print(f"error: {error}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"input": source, "error": str(error)}))
                continue
        seconds = round(time.perf_counter() - started, 3)
        if args.json:
            print(json.dumps({"input": source, "output": str(written), "seconds": seconds}))
        elif args.quiet:
            print(written)
        else:
            print(f"{source} -> {written} ({seconds:.1f} s)")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _cmd_build_sd21(args: argparse.Namespace) -> int:
    from rddm.model.sd21 import build_sd21

    folder = build_sd21(args.base, args.out, lora_rank=args.lora_rank)
    print(f"built rddm-sd21 (untrained adapters) in {folder}")
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from rddm.train.config import load_config
    from rddm.train.loop import train

    config = load_config(args.config)
    if args.data:
        config.data_dir = args.data
    model = train(
        config, args.out, resume=not args.no_resume, max_steps=args.max_steps, progress=not args.quiet
    )
    print(f"model written to {model}")
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from tqdm import tqdm

    from rddm.evaluate.run import EvalSettings, crop_mosaic, evaluate, write_report

    models = {}
    for spec in args.model:
        label, _, name = spec.rpartition("=")
        pipeline = _load_model(name, args.device, args.allow_untrained, args.precision)
        if (args.canonical_shift or args.no_adapters) and not pipeline.adapters:
            canon = pipeline.info.get("canonical_pattern")
            kind = f"canonical for {canon}" if canon else "shared"
            print(
                f"note: {label or name} has no adapters ({kind}): --canonical-shift and --no-adapters"
                " add no row for it",
                file=sys.stderr,
            )
        if args.canonical_shift and pipeline.adapters:
            canonical = _load_model(name, args.device, args.allow_untrained, args.precision)
            canonical.adapters = ("rggb",)  # every other pattern is shifted onto RGGB
            models[f"{label or pipeline.info.get('name', name)} (RGGB adapter + shift)"] = canonical
        if args.no_adapters and pipeline.adapters:
            shared = _load_model(name, args.device, args.allow_untrained, args.precision)
            shared.unet.disable_adapters()
            shared.rvae.disable_adapters()
            shared.adapters = ()  # the base weights alone, for every pattern
            models[f"{label or pipeline.info.get('name', name)} (adapters off)"] = shared
        models[label or pipeline.info.get("name", name)] = pipeline
    settings = EvalSettings(
        datasets=tuple(args.data),
        levels=tuple(args.levels),
        patterns=tuple(args.patterns),
        strengths=tuple(args.strengths),
        images=args.images,
        crop=args.crop,
        demosaics=tuple(args.demosaics),
        denoisers=tuple(args.denoisers),
        bm3d_demosaics=tuple(args.bm3d_after) if args.bm3d_after else None,
        seed=args.seed,
        mosaic=args.mosaic,
        workers=max(1, args.workers),
        darktable=args.darktable,
    )
    if args.darktable:
        from rddm.evaluate.darktable import find_darktable_cli

        if find_darktable_cli() is None:
            raise RddmError("--darktable needs darktable-cli on PATH (install darktable)")
    classical = None
    if args.classical_from:
        from rddm.evaluate.run import load_classical

        try:
            classical = load_classical(args.classical_from, settings)
        except ValueError as error:
            raise RddmError(str(error)) from None
    rows = evaluate(
        models,
        settings,
        progress=lambda tasks: tqdm(tasks, unit="pair", file=sys.stderr, disable=args.quiet),
        classical=classical,
    )
    out = Path(args.out)
    report = write_report(rows, settings, out, "rddm eval " + shlex.join(sys.argv[2:]))
    crop_mosaic(models, settings, out)
    print(report.read_text(encoding="utf-8") if not args.quiet else report)
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rddm.evaluate.bench import run_bench

    _load_model(args.model, "cpu", args.allow_untrained)  # fail early and clearly
    if "model" in args.suite:
        run_bench(args.model, Path(args.out), args.sizes, sd21=not args.no_sd21)
        print((Path(args.out) / "bench.md").read_text(encoding="utf-8"))
    if "engine" in args.suite:
        from rddm.server.bench import run_engine_bench

        run_engine_bench(args.model, Path(args.out), size=args.sizes[0])
        print((Path(args.out) / "engine.md").read_text(encoding="utf-8"))
    return EXIT_OK


def _cmd_doctor(args: argparse.Namespace) -> int:
    from rddm.doctor import format_report, report

    facts = report(args.model, args.device, args.darktable_config)
    print(json.dumps(facts, indent=2) if args.json else format_report(facts))
    return EXIT_SOME_FAILED if facts["problems"] else EXIT_OK


def _unit_interval(kind: str) -> Callable[[str], float]:
    """An argparse type for a number in [0, 1] that names what it is in its error."""

    def parse(text: str) -> float:
        value = float(text)
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{text} is not a {kind} in [0, 1]")
        return value

    return parse


_strength, _probability = _unit_interval("strength"), _unit_interval("probability")


def _tile(text: str) -> int:
    value = int(text)
    if value < 64:
        raise argparse.ArgumentTypeError(f"tile {text} is too small (at least 64 pixels)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rddm", description="RAW-domain diffusion restoration for darktable."
    )
    parser.add_argument("--version", action="version", version=f"rddm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="describe camera RAW files")
    info.add_argument("files", nargs="+", metavar="FILE")
    info.add_argument("--json", action="store_true", help="one JSON object per file")
    info.set_defaults(run=_cmd_info)

    synth = commands.add_parser("synth", help="synthesize RAW LQ/HQ pairs from sRGB images")
    synth.add_argument("src_dir", metavar="SRC_DIR")
    synth.add_argument("out_dir", metavar="OUT_DIR")
    synth.add_argument(
        "--patterns",
        nargs="+",
        default=["RGGB"],
        type=str.upper,
        choices=["RGGB", "BGGR", "GRBG", "GBRG"],
        help="one pair per pattern (default RGGB)",
    )
    synth.add_argument(
        "--iso",
        nargs="+",
        type=int,
        metavar="ISO",
        help="one pair per ISO with a real camera's darktable noise profile "
        "(default: Brooks et al. noise ranges)",
    )
    synth.add_argument("--no-noise", action="store_true", help="noise-free LQ mosaics")
    synth.add_argument("--no-tone-curve", action="store_true", help="skip the inverse tone curve")
    synth.add_argument("--crop", type=int, metavar="N", help="random N x N crop of each image")
    synth.add_argument("--defocus", type=_probability, default=0.0, metavar="P")
    synth.add_argument("--motion", type=_probability, default=0.0, metavar="P")
    synth.add_argument("--downsample", type=_probability, default=0.0, metavar="P")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=1)
    synth.add_argument("--overwrite", action="store_true")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.add_argument("--json", action="store_true")
    synth.set_defaults(run=_cmd_synth)

    restore = commands.add_parser("restore", help="restore RAW files with the RDDM model")
    restore.add_argument("files", nargs="+", metavar="FILE")
    restore.add_argument("--out", metavar="DIR", help="output folder (default: next to each RAW)")
    restore.add_argument("--strength", type=_strength, default=0.5, help="0 = fidelity .. 1 = full (0.5)")
    restore.add_argument("--format", default="dng", choices=["dng", "tiff", "png", "jpeg"])
    restore.add_argument("--model", default="rddm-tiny", help="shipped model name, folder or hub id")
    restore.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    add_precision(restore)
    restore.add_argument("--tile", type=_tile, default=512, help="tile size in pixels (512)")
    restore.add_argument("--overwrite", action="store_true", help="replace <name>_rddm.<ext>")
    restore.add_argument("--json", action="store_true", help="one JSON object per file")
    restore.add_argument("--quiet", action="store_true", help="no progress bars")
    restore.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    restore.set_defaults(run=_cmd_restore)

    train = commands.add_parser("train", help="train a model (resumes from the last checkpoint in OUT)")
    train.add_argument("--config", required=True, help="YAML config, or a shipped name (rddm-tiny)")
    train.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoints, log, model")
    train.add_argument("--data", metavar="DIR", help="sRGB training photos (default: the config's)")
    train.add_argument("--max-steps", type=int, metavar="N", help="stop at step N (resume later)")
    train.add_argument("--no-resume", action="store_true", help="ignore checkpoints in OUT")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(run=_cmd_train)

    evaluation = commands.add_parser("eval", help="score a model against classical pipelines")
    evaluation.add_argument("--model", nargs="+", default=["rddm-tiny"], metavar="[LABEL=]MODEL")
    evaluation.add_argument(
        "--data",
        nargs="+",
        default=["../shared/data/srgb-bench/kodak24", "../shared/data/srgb-bench/mcmaster18"],
    )
    evaluation.add_argument(
        "--levels", nargs="+", default=["none", "low", "mid", "high"], choices=["none", "low", "mid", "high"]
    )
    evaluation.add_argument("--patterns", nargs="+", default=["RGGB", "BGGR", "GRBG", "GBRG"], type=str.upper)
    evaluation.add_argument("--strengths", nargs="+", type=_strength, default=[0.0, 0.5, 1.0])
    evaluation.add_argument("--images", type=int, metavar="N", help="first N images of each set")
    evaluation.add_argument("--crop", type=int, metavar="N", help="centre N x N crop of each image")
    evaluation.add_argument(
        "--demosaics",
        nargs="*",
        default=["ahd", "aahd", "dht"],
        choices=["ahd", "aahd", "dht"],
        help="LibRaw's demosaics for the classical chains (none given: the models' rows only)",
    )
    evaluation.add_argument(
        "--denoisers",
        nargs="+",
        default=["nlm", "bm3d"],
        choices=["nlm", "bm3d", "none"],
        help="denoisers after LibRaw's demosaic, each tuned per level (BM3D: ~15 s per 256 px crop, sigma);"
        " none: the demosaic alone",
    )
    evaluation.add_argument(
        "--bm3d-after",
        nargs="+",
        choices=["ahd", "aahd", "dht"],
        metavar="DEMOSAIC",
        help="run BM3D after these LibRaw demosaics only (default: after each)",
    )
    evaluation.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes for the classical chains (default: one per core)",
    )
    evaluation.add_argument(
        "--canonical-shift", action="store_true", help="ablation: RGGB adapter + shifting"
    )
    evaluation.add_argument(
        "--darktable",
        action="store_true",
        help="also score darktable-cli's demosaic + profiled denoise (needs darktable)",
    )
    evaluation.add_argument(
        "--no-adapters", action="store_true", help="ablation: the same model with its adapters off"
    )
    evaluation.add_argument(
        "--classical-from",
        metavar="JSON",
        help="reuse the classical rows of an earlier results.json made with the same settings",
    )
    evaluation.add_argument(
        "--mosaic",
        default="camera",
        choices=["camera", "srgb"],
        help="camera: mosaics in real cameras' colour spaces (default); srgb: linear sRGB mosaics with"
        " neutral white balance, the usual demosaicking protocol's",
    )
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument("--out", default="out/eval", metavar="DIR")
    evaluation.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    add_precision(evaluation)
    evaluation.add_argument("--quiet", action="store_true")
    evaluation.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    evaluation.set_defaults(run=_cmd_eval)

    bench = commands.add_parser("bench", help="time and memory of restoring, against LibRaw AHD")
    bench.add_argument("--model", default="rddm-tiny")
    bench.add_argument("--sizes", nargs="+", default=["12MP", "24MP"], choices=["12MP", "24MP"])
    bench.add_argument("--no-sd21", action="store_true", help="skip the reduced-width rddm-sd21 run")
    bench.add_argument(
        "--suite",
        nargs="+",
        default=["model", "engine"],
        choices=["model", "engine"],
        help="model: whole files, ROI, sd21; engine: a real engine's latencies and overhead",
    )
    bench.add_argument("--out", default="out/bench", metavar="DIR")
    bench.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    bench.set_defaults(run=_cmd_bench)

    model = commands.add_parser("model", help="build and inspect models")
    model_commands = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    build = model_commands.add_parser("build-sd21", help="build rddm-sd21 from a local SD 2.1-base folder")
    build.add_argument("--base", required=True, metavar="PATH", help="diffusers-format SD 2.1-base folder")
    build.add_argument("--out", required=True, metavar="PATH", help="model folder to write")
    build.add_argument("--lora-rank", type=int, default=4)
    build.set_defaults(run=_cmd_build_sd21)

    doctor = commands.add_parser("doctor", help="check this installation (for bug reports too)")
    doctor.add_argument("--model", default="rddm-tiny")
    doctor.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    doctor.add_argument("--darktable-config", metavar="DIR", help="darktable's config folder")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(run=_cmd_doctor)

    from rddm.server.commands import add_engine_commands

    add_engine_commands(commands, _strength, _tile, add_precision)
    return parser


def _quiet_libraries() -> None:
    """Library chatter (diffusers/transformers notices) is not for the user's terminal."""
    for name in ("diffusers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rddm` console script."""
    warnings.showwarning = _one_line_warnings
    _quiet_libraries()
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except RddmError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
