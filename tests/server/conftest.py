"""A real engine on an ephemeral port: uvicorn serving the FastAPI app in a thread of the test
process (so a test can count the model's runs), and fixture RAWs."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import uvicorn

from rddm.model.registry import load_pipeline
from rddm.server.app import create_app
from rddm.server.run import bind
from rddm.server.service import Engine
from rddm.synth.dataset import write_mosaic_dng
from tests.conftest import REPO

SAMPLE = REPO / "engine" / "rddm" / "data" / "sample.dng"
TOKEN = "test-token-0123456789abcdef"


class Api:
    """Plain HTTP calls to the test engine; returns (status, headers, parsed JSON or bytes)."""

    def __init__(self, url: str, engine: Engine):
        self.url, self.engine = url, engine

    def call(self, method: str, path: str, body=None, *, token: str | None = TOKEN, raw: bytes | None = None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, headers, payload = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, payload = error.code, error.headers, error.read()
        if headers.get("Content-Type", "").startswith("application/json"):
            return status, headers, json.loads(payload)
        return status, headers, payload

    def wait_job(self, job_id: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _, job = self.call("GET", f"/v1/jobs/{job_id}?wait=5")
            assert status == 200, job
            if job["state"] not in ("queued", "running"):
                return job
        raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="module")
def api(tiny_model_dir):
    """The engine with the tiny test model and 128-pixel tiles (many tiles: cancel has time to act)."""
    engine = Engine(load_pipeline(tiny_model_dir), model_name="test-tiny", tile=128)
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(create_app(engine, TOKEN), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test engine did not start"
    yield Api(f"http://127.0.0.1:{sock.getsockname()[1]}", engine)
    server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture
def shoot(tmp_path) -> Path:
    """A folder with a name that needs quoting, holding a copy of the bundled sample DNG."""
    folder = tmp_path / "shoot ü 'x' $HOME"
    folder.mkdir()
    (folder / "sample.dng").write_bytes(SAMPLE.read_bytes())
    return folder


def write_big_dng(path: Path, size: int = 1536) -> Path:
    """A synthesized CFA DNG large enough that restoring it takes seconds with 128-pixel tiles."""
    rng = np.random.default_rng(1)
    mosaic = rng.uniform(0.05, 0.6, (size, size)).astype(np.float32)
    return write_mosaic_dng(path, mosaic, "RGGB", (2.0, 1.0, 1.5), np.eye(3))
