"""`rddm engine start|status|stop` and `rddm client ...` as real processes, state file included."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tifffile

from rddm.server.client import find_engine
from rddm.server.state import read_state, write_state
from tests.server.conftest import write_big_dng

RDDM = str(Path(sys.executable).parent / "rddm")


def rddm(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([RDDM, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def state(tmp_path):
    folder = tmp_path / "state"
    yield folder
    rddm("engine", "stop", "--state-dir", str(folder), "--timeout", "20")


def model_args(tiny_model_dir) -> list[str]:
    return ["--model", str(tiny_model_dir), "--allow-untrained"]


def test_start_status_restore_stop(tiny_model_dir, state, shoot):
    started = rddm("engine", "start", "--state-dir", str(state), *model_args(tiny_model_dir), "--tile", "256")
    assert started.returncode == 0, started.stderr
    info = read_state(state)
    assert started.stdout.strip() == f"{info['url']} (pid {info['pid']})"
    assert info["url"].startswith("http://127.0.0.1:") and len(info["token"]) >= 32
    assert stat.S_IMODE((state / "engine.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700

    again = rddm("engine", "start", "--state-dir", str(state), *model_args(tiny_model_dir))
    assert again.returncode == 0 and again.stdout.startswith("already running")
    assert read_state(state)["pid"] == info["pid"]

    status = rddm("engine", "status", "--state-dir", str(state), "--json")
    report = json.loads(status.stdout)
    assert status.returncode == 0 and report["running"] and report["pid"] == info["pid"]
    assert report["model"] == "test-tiny"

    progress = shoot / "progress.jsonl"
    source = shoot / "sample.dng"
    restored = rddm(
        "client", "restore", str(source), "--state-dir", str(state),
        "--strength", "0.3", "--progress-file", str(progress), "--json",
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    output = json.loads(restored.stdout.splitlines()[-1])["output"]
    assert output == str(shoot / "sample_rddm.dng")
    with tifffile.TiffFile(output) as tif:
        assert tif.pages[0].photometric == 34892
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    job = lines[0]["job"]
    assert all(line["job"] == job for line in lines)
    assert lines[0]["state"] == "queued" and lines[0]["inputs"] == [str(source)]
    assert {"file": str(source), "output": output, "job": job} in lines
    assert lines[-1]["state"] == "done" and lines[-1]["final"] is True

    stopped = rddm("engine", "stop", "--state-dir", str(state))
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"stopped (pid {info['pid']})"
    assert not (state / "engine.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(info["pid"], 0)
    status = rddm("engine", "status", "--state-dir", str(state))
    assert status.returncode == 1 and status.stdout.strip() == "not running"


def test_client_starts_the_engine_and_reports_failures(tiny_model_dir, state, shoot):
    broken = shoot / "broken.dng"
    broken.write_bytes(b"II*\0" + b"\0" * 64)
    result = rddm(
        "client", "restore", str(shoot / "sample.dng"), str(broken), "--state-dir", str(state),
        *model_args(tiny_model_dir), "--wait", "--format", "jpeg", "--out", str(shoot),
    )  # fmt: skip
    assert result.returncode == 1
    assert f"{shoot / 'sample.dng'} -> {shoot / 'sample_rddm.jpg'}" in result.stdout
    assert result.stderr.count("error:") == 1 and "broken.dng" in result.stderr
    assert "Traceback" not in result.stderr
    assert read_state(state) is not None  # the client left the engine running for the next call

    missing = rddm("client", "restore", str(shoot / "nope.dng"), "--state-dir", str(state), "--wait")
    assert missing.returncode == 2 and missing.stderr.strip().endswith("nope.dng: no such file")

    preview = rddm(
        "client", "preview", str(shoot / "sample.dng"), "--roi", "10,20,64,32", "--strength", "0.4",
        "--out", str(shoot / "crop.png"), "--state-dir", str(state), "--json",
    )  # fmt: skip
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout) == {"output": str(shoot / "crop.png"), "cache": "miss"}
    assert (shoot / "crop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stop_cancels_the_running_job_and_no_file_is_left(tiny_model_dir, state, tmp_path):
    source = write_big_dng(tmp_path / "big.dng", size=2048)
    out = tmp_path / "out"
    out.mkdir()
    start = rddm("engine", "start", "--state-dir", str(state), *model_args(tiny_model_dir), "--tile", "128")
    assert start.returncode == 0, start.stderr
    submitted = rddm("client", "restore", str(source), "--out", str(out), "--state-dir", str(state), "--json")
    job = json.loads(submitted.stdout)["job"]
    client, _ = find_engine(state)
    deadline = time.monotonic() + 60
    while client.job(job)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = client.pid
    stopped = rddm("engine", "stop", "--state-dir", str(state), "--timeout", "30")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert list(out.iterdir()) == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_stale_state_file_is_detected_and_replaced(tiny_model_dir, state):
    state.mkdir(mode=0o700)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    write_state(state, {"url": "http://127.0.0.1:9", "token": "x" * 32, "pid": int(dead.stdout)})
    status = rddm("engine", "status", "--state-dir", str(state))
    assert status.returncode == 1
    assert "stale state file" in status.stdout and f"pid {int(dead.stdout)} is gone" in status.stdout
    assert not (state / "engine.json").exists()

    # Our own live pid but nothing serving at the address: also stale, and start replaces it.
    write_state(state, {"url": "http://127.0.0.1:9", "token": "x" * 32, "pid": os.getpid()})
    start = rddm("engine", "start", "--state-dir", str(state), *model_args(tiny_model_dir))
    assert start.returncode == 0, start.stderr
    assert read_state(state)["pid"] != os.getpid()
    assert rddm("engine", "stop", "--state-dir", str(state)).returncode == 0

    (state / "engine.json").write_text("{broken")
    client, why = find_engine(state)
    assert client is None and why == "removed an unreadable state file"


def test_serving_beyond_this_machine_needs_a_chosen_token(tiny_model_dir, state, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RDDM_ENGINE_TOKEN"}
    refused = rddm("engine", "run", "--state-dir", str(state), "--host", "0.0.0.0", env=env)
    assert refused.returncode == 2
    assert "needs a token you choose" in refused.stderr and "Traceback" not in refused.stderr
    short = tmp_path / "token"
    short.write_text("abc\n")
    refused = rddm(
        "engine", "run", "--state-dir", str(state), "--host", "0.0.0.0", "--token-file", str(short)
    )
    assert refused.returncode == 2 and "at least 16 characters" in refused.stderr


def test_a_failing_start_says_why(state):
    result = rddm("engine", "start", "--state-dir", str(state), "--model", "/no/such/model")
    assert result.returncode == 2
    assert "the engine did not start" in result.stderr and "/no/such/model" in result.stderr


def test_a_precision_the_device_cannot_run_is_one_line(tiny_model_dir, state):
    """``--precision`` reaches the engine started in the background; fp16 on the CPU is refused."""
    result = rddm(
        "engine",
        "start",
        "--state-dir",
        str(state),
        *model_args(tiny_model_dir),
        "--device",
        "cpu",
        "--precision",
        "fp16",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the engine did not start: error: --precision fp16: the CPU runs in float32" in result.stderr


def test_cancel_and_an_engine_that_is_not_there(state):
    result = rddm("client", "cancel", "abc", "--state-dir", str(state))
    assert result.returncode == 2 and "no engine is running" in result.stderr
