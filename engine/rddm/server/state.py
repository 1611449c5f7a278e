"""The engine's state file: where a running engine is and its token, readable only by the user.

``<state dir>/engine.json`` holds ``{"url", "token", "pid", "host", "port", "model", "device",
"version", "started", "log"}``. The state dir is ``--state-dir``, else ``$RDDM_STATE_DIR``, else the
platform's user state folder (``~/.local/state/rddm`` on Linux). Nothing here imports torch: the
client and the darktable plugin's calls stay quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import platformdirs

STATE_FILE = "engine.json"
LOG_FILE = "engine.log"


def state_dir(given: str | os.PathLike | None = None) -> Path:
    """The state folder (created, mode 0700 on POSIX)."""
    folder = Path(given or os.environ.get("RDDM_STATE_DIR") or platformdirs.user_state_dir("rddm"))
    folder = folder.expanduser().absolute()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def write_state(folder: Path, state: dict) -> Path:
    """Write the state file atomically with mode 0600 (it holds the token)."""
    path = folder / STATE_FILE
    descriptor, temp = tempfile.mkstemp(prefix=".engine-", suffix=".json", dir=folder)
    try:
        if sys.platform != "win32":
            os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(state, stream, indent=2)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return path


def read_state(folder: Path) -> dict | None:
    """The state file's content, or None when it is missing or unreadable (a broken file is stale)."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not {"url", "token", "pid"} <= state.keys():
        return None
    return state


def remove_state(folder: Path, pid: int | None = None) -> None:
    """Remove the state file (only if it is ``pid``'s, when given)."""
    path = folder / STATE_FILE
    if pid is not None:
        state = read_state(folder)
        if state is not None and state.get("pid") != pid:
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (POSIX; on Windows the health check decides)."""
    if sys.platform == "win32":
        return True
    try:  # reap it if it is our own child that ended (a zombie still answers kill 0)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True
