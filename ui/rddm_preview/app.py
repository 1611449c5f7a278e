"""``rddm-preview FILE``: the preview panel's command line.

Started from darktable with ``--apply``, the "Apply" button prints the choice as one JSON line,
``{"strength": s, "format": f}`` with s in [0, 1], and exits 0; closing the window instead prints
nothing and exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QApplication

from rddm_preview.theme import apply_dark_theme
from rddm_preview.window import Options, PreviewWindow

EXIT_OK, EXIT_CLOSED = 0, 1  # argparse exits 2 on a usage error


def _percent(text: str) -> int:
    try:
        value = round(float(text))
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a strength from 0 to 100")
    return value


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0 or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not x,y,width,height in pixels")
    return values  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rddm-preview",
        description="Compare rddm restoration strengths on a 1:1 crop of a RAW before restoring it. "
        "Keys: space before/after, +/- zoom, 1 1:1, 2 2:1, F fit, Esc cancel.",
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="the RAW file to open")
    parser.add_argument(
        "--strength", type=_percent, metavar="0..100", help="start strength (default: the last one)"
    )
    parser.add_argument("--roi", type=_roi, metavar="X,Y,W,H", help="the region to compare, upright pixels")
    parser.add_argument("--engine", metavar="URL", help="a running engine (token: $RDDM_ENGINE_TOKEN)")
    parser.add_argument("--state-dir", metavar="DIR", help="the engine's state folder (default: per user)")
    parser.add_argument("--model", help="model for an engine this starts (default: the engine's)")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda", "mps"], help="device for an engine this starts"
    )
    parser.add_argument("--apply", action="store_true", help="show Apply: print the choice as JSON and exit")
    parser.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--screenshot", metavar="PNG", help="save a picture of the window once the region is shown, then exit"
    )
    return parser


def options_from(args: argparse.Namespace) -> Options:
    start: list[str] = []
    if args.model:
        start += ["--model", args.model]
    if args.device:
        start += ["--device", args.device]
    if args.allow_untrained:
        start.append("--allow-untrained")
    return Options(
        engine_url=args.engine,
        state_dir=args.state_dir,
        start_options=tuple(start),
        roi=args.roi,
        strength=args.strength,
        apply=args.apply,
    )


def settings() -> QSettings:
    """Window state and last strength; $RDDM_PREVIEW_SETTINGS names an INI file instead."""
    path = os.environ.get("RDDM_PREVIEW_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("rddm", "rddm-preview")


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0]])
        app.setApplicationName("rddm-preview")
        app.setOrganizationName("rddm")
    apply_dark_theme(app)
    return app


def screenshot_when_ready(window: PreviewWindow, path: str) -> None:
    """Save the window once the strip is filled (or a problem shows), then quit."""

    def grab() -> None:
        window.grab().save(path)
        QApplication.instance().exit(EXIT_CLOSED if window.problem.isVisible() else EXIT_OK)

    window.strip_ready.connect(lambda: QTimer.singleShot(300, grab))
    window.problem_shown.connect(lambda _: QTimer.singleShot(300, grab))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    app = application()
    window = PreviewWindow(settings(), options_from(args))

    def excepthook(kind, error, trace) -> None:  # PyQt would abort on an exception in a slot
        message = f"unexpected error: {kind.__name__}: {error}"
        sys.stderr.write(f"rddm-preview: {message}\n")
        window.show_problem(message)

    sys.excepthook = excepthook
    if args.screenshot:
        screenshot_when_ready(window, str(Path(args.screenshot).absolute()))
    # the window's own close ends the program, with the status that says whether Apply was chosen
    app.setQuitOnLastWindowClosed(False)
    window.closed.connect(lambda: app.exit(EXIT_CLOSED if args.apply and not window.applied else EXIT_OK))
    window.show()
    if args.file:
        window.open_file(args.file)
    return app.exec()
