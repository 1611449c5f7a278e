"""A small HTTP client of the engine (standard library only), and finding or starting the engine.

Used by ``rddm client ...``, ``rddm engine status|stop`` and the benchmarks; the darktable plugin
and the preview panel talk to the engine through it or through the same HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from rddm.errors import RddmError
from rddm.server.state import LOG_FILE, pid_alive, read_state, remove_state, state_dir

START_TIMEOUT = 300.0


class EngineError(RddmError):
    """The engine answered with an error (``status`` is the HTTP status)."""

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code


class EngineUnavailable(RddmError):
    """No engine answers at the address."""


class EngineClient:
    """Calls to one engine at ``url`` with its bearer ``token``."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0, pid: int | None = None):
        self.url, self.token, self.timeout, self.pid = url.rstrip("/"), token, timeout, pid
        context = None
        if self.url.startswith("https:") and os.environ.get("RDDM_ENGINE_CA"):
            context = ssl.create_default_context(cafile=os.environ["RDDM_ENGINE_CA"])
        self._context = context

    def request(self, method: str, path: str, body: dict | None = None, *, timeout: float | None = None):
        """(status, headers (case-insensitive), body bytes); raises EngineError for 4xx/5xx,
        EngineUnavailable when nothing answers."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(
                request, timeout=timeout or self.timeout, context=self._context
            ) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                detail = json.loads(payload)
                message, code = detail.get("error", str(detail)), detail.get("code", "")
            except ValueError:
                message, code = payload.decode(errors="replace") or error.reason, ""
            raise EngineError(str(message), error.code, code) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise EngineUnavailable(f"no engine answers at {self.url} ({reason})") from None

    def call(self, method: str, path: str, body: dict | None = None, **kwargs) -> dict:
        return json.loads(self.request(method, path, body, **kwargs)[2])

    def health(self, timeout: float = 5.0) -> dict:
        return self.call("GET", "/v1/health", timeout=timeout)

    def submit(self, inputs: list[str], **options) -> dict:
        return self.call("POST", "/v1/jobs", {"inputs": inputs, **options})

    def job(self, job_id: str, wait: float = 0.0) -> dict:
        return self.call("GET", f"/v1/jobs/{job_id}?wait={wait}", timeout=self.timeout + wait)

    def cancel(self, job_id: str) -> dict:
        return self.call("DELETE", f"/v1/jobs/{job_id}")

    def preview(self, path: str, **options) -> tuple[bytes, dict]:
        """PNG bytes and the response headers (``X-Rddm-Cache``, ``X-Rddm-Seconds``)."""
        _, headers, body = self.request("POST", "/v1/preview", {"input": path, **options})
        return body, headers

    def info(self, path: str) -> dict:
        return self.call("POST", "/v1/info", {"input": path})

    def shutdown(self) -> dict:
        return self.call("POST", "/v1/shutdown")


def find_engine(folder: Path) -> tuple[EngineClient | None, str | None]:
    """The running engine of the state folder, or (None, why not). A stale state file (dead
    process, nothing answering, another process on the port) is removed."""
    state = read_state(folder)
    if state is None:
        stale = (folder / "engine.json").exists()
        if stale:
            remove_state(folder)
        return None, "removed an unreadable state file" if stale else None
    pid = int(state["pid"])
    client = EngineClient(state["url"], state["token"], pid=pid)
    if not pid_alive(pid):
        remove_state(folder, pid)
        return None, f"removed a stale state file (engine pid {pid} is gone)"
    try:
        health = client.health(timeout=5.0)
    except RddmError:
        remove_state(folder, pid)
        return None, f"removed a stale state file (nothing answers at {state['url']})"
    if health.get("pid") != pid and state.get("host") in ("127.0.0.1", "localhost", "::1"):
        remove_state(folder, pid)
        return None, f"removed a stale state file (another process answers at {state['url']})"
    return client, None


def engine_command(options: dict) -> list[str]:
    """The command line of ``rddm engine run`` with ``options`` (name -> value; True for flags)."""
    command = [sys.executable, "-m", "rddm.cli", "engine", "run"]
    for name, value in options.items():
        if value is None or value is False:
            continue
        command.append("--" + name.replace("_", "-"))
        if value is not True:
            command.append(str(value))
    return command


def start_engine(folder: Path, options: dict, *, timeout: float = START_TIMEOUT) -> EngineClient:
    """Start ``rddm engine run`` in the background and return when it serves (model loaded)."""
    log_path = folder / LOG_FILE
    command = engine_command({**options, "state_dir": str(folder)})
    with open(log_path, "ab") as log:
        kwargs: dict = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True  # outlives the caller (a darktable job, a terminal)
        process = subprocess.Popen(command, **kwargs)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise RddmError(f"the engine did not start: {last_error(log_path)} (log: {log_path})")
        state = read_state(folder)
        if state is not None and state.get("pid") == process.pid:
            client = EngineClient(state["url"], state["token"], pid=process.pid)
            try:
                client.health(timeout=2.0)
                return client
            except RddmError:
                pass
        time.sleep(0.1)
    process.terminate()
    raise RddmError(f"the engine did not start within {timeout:.0f} s (log: {log_path})")


def last_error(log_path: Path) -> str:
    """The last meaningful line of the engine's log."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "it exited without a message"


def connect(
    given_state_dir: str | None = None,
    *,
    url: str | None = None,
    start: bool = True,
    options: dict | None = None,
) -> EngineClient:
    """An engine to talk to: ``url`` (token from ``$RDDM_ENGINE_TOKEN``), else the state folder's
    running engine, else (``start``) a new one started with ``options``."""
    url = url or os.environ.get("RDDM_ENGINE_URL")
    if url:
        token = os.environ.get("RDDM_ENGINE_TOKEN")
        if not token:
            raise RddmError("set RDDM_ENGINE_TOKEN to the remote engine's token")
        client = EngineClient(url, token)
        client.health()
        return client
    folder = state_dir(given_state_dir)
    client, _ = find_engine(folder)
    if client is not None:
        return client
    if not start:
        raise EngineUnavailable(
            f"no engine is running (state folder {folder}); start one with `rddm engine start`"
        )
    return start_engine(folder, options or {})


def stop_engine(folder: Path, timeout: float = 60.0) -> int | None:
    """Ask the folder's engine to stop and wait for its process to end; returns its pid or None."""
    client, _ = find_engine(folder)
    if client is None:
        return None
    pid = client.pid
    with contextlib.suppress(EngineUnavailable):
        client.shutdown()
    deadline = time.monotonic() + timeout
    while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid is not None and pid_alive(pid) and sys.platform != "win32":
        import signal

        os.kill(pid, signal.SIGKILL)
    remove_state(folder, pid)
    return pid
