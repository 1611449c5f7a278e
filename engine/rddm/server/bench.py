"""`rddm bench --suite engine`: the engine's own costs, measured on a real engine process.

- health requests per second (one keep-alive connection, sequential);
- a cached-strength preview of a 512x512 region (round trip: blend, render, PNG, HTTP);
- a new 512x512 region preview with the model (the RAW already read by the engine);
- a restore job through the engine against ``restore_file`` in a process holding the same model
  (the engine's overhead), and the cold ``rddm restore`` command for reference.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from rddm.evaluate.bench import bench_raw
from rddm.server.client import EngineClient, start_engine, stop_engine
from rddm.server.state import state_dir

REGION = 512


def health_rate(client: EngineClient, seconds: float = 3.0) -> float:
    """Sequential ``GET /v1/health`` on one keep-alive connection: requests per second."""
    address = urllib.parse.urlsplit(client.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        connection.request("GET", "/v1/health")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"health answered {response.status}")
        count += 1
    connection.close()
    return count / (time.perf_counter() - started)


def preview_latencies(client: EngineClient, raw_path: Path, regions: int = 4) -> dict:
    """Seconds of new-region previews (model runs) and of strength changes on cached regions."""
    first_started = time.perf_counter()
    client.preview(str(raw_path), roi=[0, 0, REGION, REGION], strength=0.5)  # reads the RAW once
    first = time.perf_counter() - first_started
    new_region, cached = [], []
    for index in range(regions):
        roi = [1000 + REGION * index + 37, 1200 + 11 * index, REGION, REGION]  # off the tile grid
        started = time.perf_counter()
        _, headers = client.preview(str(raw_path), roi=roi, strength=0.5)
        new_region.append(time.perf_counter() - started)
        if headers.get("X-Rddm-Cache") != "miss":
            raise RuntimeError("a new region was answered from the cache")
        for strength in (0.1, 0.35, 0.6, 0.85, 1.0):
            started = time.perf_counter()
            _, headers = client.preview(str(raw_path), roi=roi, strength=strength)
            cached.append(time.perf_counter() - started)
            if headers.get("X-Rddm-Cache") != "hit":
                raise RuntimeError("a strength change ran the model")
    return {
        "first_preview_s": round(first, 3),
        "new_region_median_s": round(statistics.median(new_region), 3),
        "new_region_s": [round(value, 3) for value in new_region],
        "cached_strength_median_ms": round(1000 * statistics.median(cached), 1),
        "cached_strength_max_ms": round(1000 * max(cached), 1),
    }


IN_PROCESS = """
import json, sys, time
from rddm.model.registry import load_pipeline
from rddm.restore import restore_file
pipeline = load_pipeline(sys.argv[1]).to("auto")
started = time.perf_counter()
restore_file(pipeline, sys.argv[2], out_dir=sys.argv[3], overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def job_overhead(client: EngineClient, model: str, raw_path: Path, folder: Path) -> dict:
    """A job's submit-to-done seconds against ``restore_file`` on the same file in a process that
    already holds the model (no model load on either side)."""
    out = (folder / "restored").resolve()
    out.mkdir(exist_ok=True)
    direct = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, model, str(raw_path), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    direct_seconds = json.loads(direct.stdout.splitlines()[-1])["seconds"]
    started = time.perf_counter()
    job = client.submit([str(raw_path)], output_dir=str(out), overwrite=True)
    while job["state"] in ("queued", "running"):
        job = client.job(job["id"], wait=30.0)  # answers as soon as the job ends
    engine_seconds = time.perf_counter() - started
    if job["state"] != "done" or job["errors"]:
        raise RuntimeError(f"the engine's job failed: {job['errors']}")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rddm.cli", "restore", str(raw_path), "--out", str(out), "--overwrite",
         "--quiet", "--model", model],
        check=True,
        capture_output=True,
    )  # fmt: skip
    cold = time.perf_counter() - started
    return {
        "restore_file_s": round(direct_seconds, 2),
        "engine_job_s": round(engine_seconds, 2),
        "overhead_pct": round(100 * (engine_seconds / direct_seconds - 1), 2),
        "rddm_restore_cold_s": round(cold, 2),
    }


def run_engine_bench(model: str, out: Path, size: str = "12MP") -> dict:
    """Start a real engine with ``model``, measure, stop it; writes ``engine.json`` and ``engine.md``."""
    from rddm.evaluate.bench import SIZES

    out.mkdir(parents=True, exist_ok=True)
    raw_path = bench_raw(out, f"bench_{size}", *SIZES[size]).resolve()
    with tempfile.TemporaryDirectory(prefix="rddm-bench-state-") as temp:
        folder = state_dir(temp)
        started = time.perf_counter()
        client = start_engine(folder, {"model": model, "device": "auto"})
        start_seconds = time.perf_counter() - started
        try:
            results = {
                "model": model,
                "image": f"{size} ({raw_path.name})",
                "device": client.health()["device"],
                "engine_start_s": round(start_seconds, 2),
                "health_per_s": round(health_rate(client)),
                **preview_latencies(client, raw_path),
                **job_overhead(client, model, raw_path, out),
            }
        finally:
            stop_engine(folder)
    (out / "engine.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "engine.md").write_text(_markdown(results), encoding="utf-8")
    return results


def _markdown(results: dict) -> str:
    return "\n".join(
        [
            f"# Engine benchmark: {results['model']} on {results['device']}, {results['image']}",
            "",
            "| figure | value | target |",
            "|---|---|---|",
            f"| engine start (process, model load, serving) | {results['engine_start_s']} s | |",
            f"| health requests per second (sequential) | {results['health_per_s']} | |",
            f"| first preview (reads the RAW) | {results['first_preview_s']} s | |",
            f"| new 512x512 region preview, median | {results['new_region_median_s']} s | <= 1.5 s |",
            f"| cached strength change, median / max | {results['cached_strength_median_ms']} / "
            f"{results['cached_strength_max_ms']} ms | <= 50 ms |",
            f"| restore_file in a process holding the model | {results['restore_file_s']} s | |",
            f"| the same restore as an engine job | {results['engine_job_s']} s | |",
            f"| engine overhead | {results['overhead_pct']} % | <= 5 % |",
            f"| `rddm restore` cold (start, load, restore) | {results['rddm_restore_cold_s']} s | |",
            "",
        ]
    )
