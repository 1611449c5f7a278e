"""Finding or starting the rddm engine and calling its HTTP API (standard library only).

The panel never imports the engine's package: it runs ``rddm engine start`` (which returns at once
when an engine already serves) and reads the state file that command leaves, then speaks HTTP with
the bearer token from it.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import platformdirs

START_TIMEOUT = 300.0


class EngineProblem(Exception):
    """Anything that went wrong talking to the engine, as one readable line."""

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class Preview:
    """A PNG of a region (8-bit sRGB, upright) and how the engine made it."""

    png: bytes
    cached: bool
    seconds: float


def state_dir(given: str | None = None) -> Path:
    """The engine's state folder, found as the engine finds it: the option, $RDDM_STATE_DIR, or the
    platform's user state folder."""
    folder = given or os.environ.get("RDDM_STATE_DIR") or platformdirs.user_state_dir("rddm")
    return Path(folder).expanduser().absolute()


def rddm_executable() -> str:
    """The ``rddm`` command installed beside this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("rddm.exe" if sys.platform == "win32" else "rddm")
    if beside.exists():
        return str(beside)
    found = shutil.which("rddm")
    if found is None:
        raise EngineProblem("the rddm command is not installed (needed to start the engine)")
    return found


class Engine:
    """HTTP calls to one engine at ``url`` with its bearer ``token``."""

    def __init__(self, url: str, token: str, *, timeout: float = 600.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        ca = os.environ.get("RDDM_ENGINE_CA")
        self._context = (
            ssl.create_default_context(cafile=ca) if ca and self.url.startswith("https:") else None
        )

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        given_state_dir: str | None = None,
        start_options: list[str] | None = None,
    ) -> Engine:
        """The engine at ``url`` (token from $RDDM_ENGINE_TOKEN), or the local one of the state
        folder, started with ``rddm engine start [start_options]`` when none runs."""
        url = url or os.environ.get("RDDM_ENGINE_URL")
        if url:
            token = os.environ.get("RDDM_ENGINE_TOKEN")
            if not token:
                raise EngineProblem("set RDDM_ENGINE_TOKEN to the token of the engine at " + url)
            engine = cls(url, token)
            engine.health()
            return engine
        folder = state_dir(given_state_dir)
        command = [rddm_executable(), "engine", "start", "--state-dir", str(folder), *(start_options or [])]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=START_TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise EngineProblem(f"the engine did not start within {START_TIMEOUT:.0f} s") from None
        except OSError as error:
            raise EngineProblem(f"cannot run {command[0]}: {error.strerror or error}") from None
        if done.returncode != 0:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            raise EngineProblem(lines[-1] if lines else f"rddm engine start exited with {done.returncode}")
        try:
            state = json.loads((folder / "engine.json").read_text(encoding="utf-8"))
            engine = cls(state["url"], state["token"])
        except (OSError, ValueError, KeyError, TypeError):
            raise EngineProblem(f"the engine started but left no readable state in {folder}") from None
        engine.health()
        return engine

    def request(self, method: str, path: str, body: dict | None = None, *, timeout: float | None = None):
        """(headers, body bytes); raises EngineProblem with the engine's own message."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(
                request, timeout=timeout or self.timeout, context=self._context
            ) as answer:
                return answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                detail = json.loads(payload)
                message, code = str(detail.get("error", detail)), str(detail.get("code", ""))
            except (ValueError, AttributeError):
                message, code = payload.decode(errors="replace").strip() or str(error.reason), ""
            raise EngineProblem(message, error.code, code) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise EngineProblem(f"no engine answers at {self.url} ({reason})") from None

    def call(self, method: str, path: str, body: dict | None = None, **kwargs) -> dict:
        return json.loads(self.request(method, path, body, **kwargs)[1])

    def health(self) -> dict:
        """Version, model, device, queue and ``model_runs``."""
        return self.call("GET", "/v1/health", timeout=10.0)

    def info(self, path: str) -> dict:
        """Camera, CFA pattern, stored and upright sizes of a RAW."""
        return self.call("POST", "/v1/info", {"input": path})

    def preview(
        self,
        path: str,
        *,
        roi: tuple[int, int, int, int] | None = None,
        strength: float = 0.5,
        baseline: bool = False,
        max_size: int | None = None,
    ) -> Preview:
        """A region ``(x, y, width, height)`` of the upright picture at ``strength`` in [0, 1], or its
        classical render (``baseline``); ``max_size`` scales the result down."""
        body: dict = {"input": path, "strength": strength, "baseline": baseline}
        if roi is not None:
            body["roi"] = list(roi)
        if max_size is not None:
            body["max_size"] = max_size
        headers, png = self.request("POST", "/v1/preview", body)
        return Preview(
            png=png,
            cached=headers.get("X-Rddm-Cache") == "hit",
            seconds=float(headers.get("X-Rddm-Seconds") or 0.0),
        )

    def submit(self, path: str, *, strength: float, fmt: str, output_dir: str | None) -> dict:
        """Queue a restore of the whole RAW; the job's state."""
        body = {"inputs": [path], "strength": strength, "format": fmt, "output_dir": output_dir}
        return self.call("POST", "/v1/jobs", body)

    def job(self, job_id: str, wait: float = 0.0) -> dict:
        return self.call("GET", f"/v1/jobs/{job_id}?wait={wait}", timeout=wait + 30.0)

    def cancel(self, job_id: str) -> dict:
        return self.call("DELETE", f"/v1/jobs/{job_id}")
