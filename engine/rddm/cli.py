"""The `rddm` command line.

Exit status: 0 success, 1 some inputs failed (each reported on its own line), 2 usage error or
nothing could be done. Errors are one line on stderr (``error: <file>: <reason>``), never a traceback.
"""

from __future__ import annotations

import argparse
import json
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


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rddm` console script."""
    warnings.showwarning = _one_line_warnings
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
