"""``rddm engine start|run|status|stop`` and ``rddm client restore|cancel|preview|info``.

Exit status as everywhere in ``rddm``: 0 success, 1 some inputs failed (or the job was cancelled),
2 usage error or nothing could be done.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from rddm.errors import OutputError
from rddm.server.client import EngineClient, connect, find_engine, start_engine, stop_engine
from rddm.server.state import state_dir

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 1
POLL_SECONDS = 0.25


def _engine_options(args: argparse.Namespace) -> dict:
    return {
        "model": args.model,
        "device": args.device,
        "precision": None if getattr(args, "precision", "auto") == "auto" else args.precision,
        "allow_untrained": getattr(args, "allow_untrained", False),
    }


def _cmd_engine_run(args: argparse.Namespace) -> int:
    from rddm.server.run import serve

    return serve(
        state_dir(args.state_dir),
        model=args.model,
        device=args.device,
        precision=args.precision,
        host=args.host,
        port=args.port,
        token_file=args.token_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tile=args.tile,
        allow_untrained=args.allow_untrained,
    )


def _cmd_engine_start(args: argparse.Namespace) -> int:
    folder = state_dir(args.state_dir)
    running, _ = find_engine(folder)
    if running is not None:
        print(f"already running: {running.url} (pid {running.pid})")
        return EXIT_OK
    options = {
        **_engine_options(args),
        "host": args.host,
        "port": args.port,
        "token_file": args.token_file,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "tile": args.tile,
    }
    client = start_engine(folder, options)
    print(f"{client.url} (pid {client.pid})")
    return EXIT_OK


def _cmd_engine_status(args: argparse.Namespace) -> int:
    folder = state_dir(args.state_dir)
    client, why = find_engine(folder)
    if client is None:
        report = {"running": False, "state_dir": str(folder), "note": why}
        print(json.dumps(report) if args.json else f"not running{f' ({why})' if why else ''}")
        return EXIT_NOT_RUNNING
    health = client.health()
    report = {"running": True, "url": client.url, "state_dir": str(folder), **health}
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"running: {client.url} pid {health['pid']}, rddm {health['version']}, model {health['model']} "
            f"on {health['device']}, {health['queue']} queued, {health['running_jobs']} running"
        )
    return EXIT_OK


def _cmd_engine_stop(args: argparse.Namespace) -> int:
    pid = stop_engine(state_dir(args.state_dir), timeout=args.timeout)
    print("no engine was running" if pid is None else f"stopped (pid {pid})")
    return EXIT_OK


def _connect(args: argparse.Namespace, start: bool = True) -> EngineClient:
    return connect(args.state_dir, url=args.engine, start=start, options=_engine_options(args))


class ProgressFile:
    """One JSON object per line, appended and flushed, for callers that can only poll a file."""

    def __init__(self, path: str | None):
        self.stream = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, record: dict) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def _cmd_client_restore(args: argparse.Namespace) -> int:
    inputs = [os.path.abspath(path) for path in args.files]
    out = os.path.abspath(args.out) if args.out else None
    client = _connect(args)
    job = client.submit(
        inputs, strength=args.strength, format=args.format, output_dir=out, overwrite=args.overwrite
    )
    job_id = job["id"]
    progress = ProgressFile(args.progress_file)
    progress.write({"job": job_id, "state": job["state"], "progress": 0.0, "inputs": inputs})
    if not (args.wait or args.progress_file):
        print(json.dumps({"job": job_id}) if args.json else job_id)
        return EXIT_OK

    def leave(signum, frame):  # the caller gave up (SIGTERM): so does the job
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, leave)
    try:
        job = _follow(client, job_id, progress, args)
    except KeyboardInterrupt:
        client.cancel(job_id)
        progress.write({"job": job_id, "state": "cancelled", "final": True})
        print("error: cancelled", file=sys.stderr)
        return EXIT_SOME_FAILED
    finally:
        progress.close()
    if job["state"] == "cancelled":
        print(f"error: job {job_id} was cancelled", file=sys.stderr)
    return EXIT_OK if job["state"] == "done" and not job["errors"] else EXIT_SOME_FAILED


def _follow(client: EngineClient, job_id: str, progress: ProgressFile, args: argparse.Namespace) -> dict:
    """Poll the job until it ends, reporting each output, error and progress step."""
    reported_outputs = reported_errors = 0
    last = None
    while True:
        job = client.job(job_id)
        for item in job["outputs"][reported_outputs:]:
            progress.write({"job": job_id, "file": item["input"], "output": item["output"]})
            print(json.dumps(item) if args.json else f"{item['input']} -> {item['output']}", flush=True)
        for item in job["errors"][reported_errors:]:
            progress.write({"job": job_id, "file": item["input"], "error": item["error"]})
            if args.json:
                print(json.dumps(item), flush=True)
            print(f"error: {item['error']}", file=sys.stderr, flush=True)
        reported_outputs, reported_errors = len(job["outputs"]), len(job["errors"])
        current = job["current"] or {}
        step = (job["state"], round(job["progress"], 2), current.get("input"))
        final = job["state"] not in ("queued", "running")
        if step != last or final:
            record = {
                "job": job_id,
                "state": job["state"],
                "progress": job["progress"],
                "file": current.get("input"),
                "file_progress": current.get("progress"),
            }
            if final:
                record["final"] = True
            progress.write(record)
            last = step
        if final:
            return job
        time.sleep(POLL_SECONDS)


def _cmd_client_cancel(args: argparse.Namespace) -> int:
    job = _connect(args, start=False).cancel(args.job)
    print(json.dumps(job) if args.json else f"{job['id']}: {job['state']} (cancel requested)")
    return EXIT_OK


def _cmd_client_preview(args: argparse.Namespace) -> int:
    client = _connect(args)
    options = {"strength": args.strength, "baseline": args.baseline}
    if args.roi:
        options["roi"] = args.roi
    if args.max_size:
        options["max_size"] = args.max_size
    png, headers = client.preview(os.path.abspath(args.file), **options)
    written = _write_atomically(Path(args.out), png)
    cache = headers.get("X-Rddm-Cache")
    print(json.dumps({"output": str(written), "cache": cache}) if args.json else f"{written} (cache {cache})")
    return EXIT_OK


def _write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder (rddm.io would pull
    in OpenCV and tifffile: seconds the client does not need)."""
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: output folder does not exist")
    try:
        descriptor, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except OSError as error:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temp)
        raise OutputError(f"{path}: cannot write ({error.strerror or error})") from None
    return path


def _cmd_client_info(args: argparse.Namespace) -> int:
    client = _connect(args)
    print(json.dumps(client.info(os.path.abspath(args.file))))
    return EXIT_OK


def _roi(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0 or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not x,y,width,height in pixels")
    return values


def _common(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    parser.add_argument("--state-dir", metavar="DIR", help="engine state folder (default: per user)")
    if model:
        parser.add_argument("--model", default="rddm-tiny", help="model for a new engine (rddm-tiny)")
        parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
        parser.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)


def add_engine_commands(commands, strength, tile, add_precision) -> None:
    """``rddm engine ...`` and ``rddm client ...`` on the main parser's subcommands."""
    engine = commands.add_parser("engine", help="the local restoration service")
    actions = engine.add_subparsers(dest="engine_command", required=True, metavar="ACTION")
    for name, run, text in (
        ("start", _cmd_engine_start, "start it in the background; returns when it serves"),
        ("run", _cmd_engine_run, "run it in this terminal (Ctrl-C stops it)"),
    ):
        action = actions.add_parser(name, help=text)
        _common(action)
        add_precision(action)
        action.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
        action.add_argument("--port", type=int, default=0, help="port (0: any free one)")
        action.add_argument("--token-file", metavar="FILE", help="your own token (needed off 127.0.0.1)")
        action.add_argument("--tls-cert", metavar="FILE")
        action.add_argument("--tls-key", metavar="FILE")
        action.add_argument("--tile", type=tile, help="tile size in pixels (512)")
        action.set_defaults(run=run)
    status = actions.add_parser("status", help="is it running, where, with what")
    _common(status, model=False)
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_cmd_engine_status)
    stop = actions.add_parser("stop", help="stop it (running jobs end after their tile, cancelled)")
    _common(stop, model=False)
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait before killing it")
    stop.set_defaults(run=_cmd_engine_stop)

    client = commands.add_parser("client", help="talk to the engine (starts one when none runs)")
    actions = client.add_subparsers(dest="client_command", required=True, metavar="ACTION")
    restore = actions.add_parser("restore", help="restore RAW files through the engine")
    restore.add_argument("files", nargs="+", metavar="FILE")
    restore.add_argument("--out", metavar="DIR", help="output folder (default: next to each RAW)")
    restore.add_argument("--strength", type=strength, default=0.5)
    restore.add_argument("--format", default="dng", choices=["dng", "tiff", "png", "jpeg"])
    restore.add_argument("--overwrite", action="store_true")
    restore.add_argument("--progress-file", metavar="F", help="append JSON progress lines (implies --wait)")
    restore.add_argument("--wait", action="store_true", help="wait for the job (else print its id)")
    restore.add_argument("--json", action="store_true")
    restore.set_defaults(run=_cmd_client_restore)
    cancel = actions.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job", metavar="JOB")
    cancel.add_argument("--json", action="store_true")
    cancel.set_defaults(run=_cmd_client_cancel)
    preview = actions.add_parser("preview", help="a PNG of a region at a strength")
    preview.add_argument("file", metavar="FILE")
    preview.add_argument("--roi", type=_roi, metavar="X,Y,W,H", help="region of the upright picture")
    preview.add_argument("--strength", type=strength, default=0.5)
    preview.add_argument("--baseline", action="store_true", help="the classical render instead")
    preview.add_argument("--max-size", type=int, metavar="N", help="longer side at most N pixels")
    preview.add_argument("--out", required=True, metavar="PNG")
    preview.add_argument("--json", action="store_true")
    preview.set_defaults(run=_cmd_client_preview)
    info = actions.add_parser("info", help="what the engine reads from a RAW (JSON)")
    info.add_argument("file", metavar="FILE")
    info.set_defaults(run=_cmd_client_info)
    for action in (restore, cancel, preview, info):
        _common(action)
        add_precision(action)  # for an engine it starts
        action.add_argument("--engine", metavar="URL", help="a remote engine (token: $RDDM_ENGINE_TOKEN)")
