"""The engine's HTTP API against a real server: jobs, cancel, previews and their cache, auth, errors."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.server.conftest import TOKEN, write_big_dng


def png_pixels(payload: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(payload)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def assert_serving(api) -> None:
    status, _, health = api.call("GET", "/v1/health", token=None)
    assert status == 200 and health["status"] == "ok"


def test_health_needs_no_token_and_says_what_runs(api):
    status, _, health = api.call("GET", "/v1/health", token=None)
    assert status == 200
    assert health["model"] == "test-tiny" and health["device"] == "cpu" and health["dtype"] == "float32"
    assert health["pid"] == os.getpid() and health["queue"] == 0


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef", ""])
@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", "/v1/jobs", None),
        ("POST", "/v1/jobs", {"inputs": ["/x.dng"]}),
        ("GET", "/v1/jobs/abc", None),
        ("DELETE", "/v1/jobs/abc", None),
        ("POST", "/v1/preview", {"input": "/x.dng"}),
        ("POST", "/v1/info", {"input": "/x.dng"}),
        ("POST", "/v1/shutdown", None),
    ],
)
def test_every_route_but_health_needs_the_token(api, token, method, path, body):
    status, headers, answer = api.call(method, path, body, token=token)
    assert status == 401
    assert answer == {"error": "missing or wrong bearer token", "code": "unauthorized"}
    assert headers["WWW-Authenticate"] == "Bearer"


def test_job_runs_to_done_with_outputs_that_open(api, shoot, tmp_path):
    source = shoot / "sample.dng"
    before = source.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    status, headers, job = api.call(
        "POST", "/v1/jobs", {"inputs": [str(source)], "strength": 0.5, "output_dir": str(out)}
    )
    assert status == 202 and job["state"] in ("queued", "running")
    done = api.wait_job(job["id"])
    assert done["state"] == "done" and done["progress"] == 1.0 and done["errors"] == []
    written = done["outputs"][0]["output"]
    assert done["outputs"] == [{"input": str(source), "output": str(out / "sample_rddm.dng")}]
    with tifffile.TiffFile(written) as tif:
        assert tif.pages[0].photometric == 34892 and tif.pages[0].shape == (512, 768, 3)
    assert source.read_bytes() == before
    # A second job never overwrites: it numbers; with a JPEG next to the RAW.
    _, _, second = api.call("POST", "/v1/jobs", {"inputs": [str(source)] * 2, "format": "jpeg"})
    second = api.wait_job(second["id"])
    names = [Path(item["output"]).name for item in second["outputs"]]
    assert names == ["sample_rddm.jpg", "sample_rddm_1.jpg"]
    with Image.open(second["outputs"][0]["output"]) as image:
        assert image.format == "JPEG" and image.size == (768, 512)
    status, _, listing = api.call("GET", "/v1/jobs")
    assert status == 200 and [j["id"] for j in listing["jobs"]][-2:] == [job["id"], second["id"]]


def test_a_bad_file_fails_alone_and_the_job_goes_on(api, shoot, tmp_path):
    text = shoot / "notes.dng"
    text.write_text("not a raw file")
    _, _, job = api.call("POST", "/v1/jobs", {"inputs": [str(text), str(shoot / "sample.dng")]})
    job = api.wait_job(job["id"])
    assert job["state"] == "done" and len(job["outputs"]) == 1
    assert job["errors"][0]["input"] == str(text)
    assert "notes.dng" in job["errors"][0]["error"]
    _, _, only_bad = api.call("POST", "/v1/jobs", {"inputs": [str(text)]})
    assert api.wait_job(only_bad["id"])["state"] == "failed"


def test_cancel_stops_a_long_job_within_a_second_and_leaves_no_file(api, tmp_path):
    source = write_big_dng(tmp_path / "big.dng")
    out = tmp_path / "out"
    out.mkdir()
    _, _, job = api.call("POST", "/v1/jobs", {"inputs": [str(source)], "output_dir": str(out)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, _, state = api.call("GET", f"/v1/jobs/{job['id']}")
        if state["current"] and state["current"]["progress"] > 0:
            break
        time.sleep(0.05)
    assert state["state"] == "running" and 0 < state["progress"] < 0.5, state
    asked = time.monotonic()
    status, _, answer = api.call("DELETE", f"/v1/jobs/{job['id']}")
    assert status == 202 and answer["id"] == job["id"]
    final = api.wait_job(job["id"], timeout=10)
    assert final["state"] == "cancelled" and final["outputs"] == []
    assert time.monotonic() - asked < 1.5
    assert list(out.iterdir()) == []
    assert_serving(api)


def test_cancel_a_queued_job_and_an_unknown_one(api, tmp_path):
    source = write_big_dng(tmp_path / "big.dng")
    _, _, running = api.call("POST", "/v1/jobs", {"inputs": [str(source)]})
    _, _, queued = api.call("POST", "/v1/jobs", {"inputs": [str(source)]})
    _, _, answer = api.call("DELETE", f"/v1/jobs/{queued['id']}")
    assert answer["state"] == "cancelled"
    api.call("DELETE", f"/v1/jobs/{running['id']}")
    assert api.wait_job(running["id"])["state"] == "cancelled"
    status, _, missing = api.call("DELETE", "/v1/jobs/nope")
    assert status == 404 and missing["code"] == "not_found"
    status, _, missing = api.call("GET", "/v1/jobs/nope")
    assert status == 404


def test_preview_another_strength_on_the_same_roi_is_a_blend(api, shoot):
    body = {"input": str(shoot / "sample.dng"), "roi": [100, 64, 256, 192], "strength": 0.2}
    runs = api.engine.device_lock.runs
    status, headers, first = api.call("POST", "/v1/preview", body)
    assert status == 200 and headers["X-Rddm-Cache"] == "miss"
    assert png_pixels(first).shape == (192, 256, 3)
    ran = api.engine.device_lock.runs
    assert ran > runs
    started = time.perf_counter()
    status, headers, second = api.call("POST", "/v1/preview", {**body, "strength": 0.9})
    round_trip = time.perf_counter() - started
    assert status == 200 and headers["X-Rddm-Cache"] == "hit"
    assert api.engine.device_lock.runs == ran  # the model did not run
    assert float(headers["X-Rddm-Seconds"]) < 0.05 and round_trip < 0.5
    assert not np.array_equal(png_pixels(first), png_pixels(second))


def test_preview_equals_the_same_region_of_the_full_restore(api, shoot, tmp_path):
    source = shoot / "sample.dng"
    _, _, job = api.call("POST", "/v1/jobs", {"inputs": [str(source)], "format": "png", "strength": 0.7})
    full = png_pixels(Path(api.wait_job(job["id"])["outputs"][0]["output"]).read_bytes())
    x, y, width, height = 200, 136, 160, 96
    _, _, crop = api.call(
        "POST", "/v1/preview", {"input": str(source), "roi": [x, y, width, height], "strength": 0.7}
    )
    difference = np.abs(png_pixels(crop).astype(int) - full[y : y + height, x : x + width].astype(int))
    assert difference.max() <= 1


def test_baseline_and_overview(api, shoot):
    source = str(shoot / "sample.dng")
    status, headers, before = api.call(
        "POST", "/v1/preview", {"input": source, "roi": [0, 0, 64, 48], "baseline": True}
    )
    pixels = png_pixels(before)
    assert status == 200 and pixels.shape == (48, 64, 3) and pixels.std() > 1
    status, _, overview = api.call(
        "POST", "/v1/preview", {"input": source, "baseline": True, "max_size": 256}
    )
    assert status == 200 and png_pixels(overview).shape == (171, 256, 3)
    status, _, info = api.call("POST", "/v1/info", {"input": source})
    assert status == 200 and (info["upright_width"], info["upright_height"]) == (768, 512)
    assert info["cfa_pattern"] in ("RGGB", "BGGR", "GRBG", "GBRG")


def test_bad_requests_get_json_4xx_and_the_engine_keeps_serving(api, shoot, tmp_path):
    sample = str(shoot / "sample.dng")
    text = shoot / "photo.dng"
    text.write_text("hello")
    jpeg = shoot / "photo.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    cases = [
        ("POST", "/v1/jobs", {"inputs": [str(shoot / "missing.dng")]}, 400, "no such file"),
        ("POST", "/v1/jobs", {"inputs": [str(shoot)]}, 400, "not a regular file"),
        ("POST", "/v1/jobs", {"inputs": ["sample.dng"]}, 400, "give an absolute path"),
        ("POST", "/v1/jobs", {"inputs": ["/a\u0000b"]}, 400, "not a usable path"),
        (
            "POST",
            "/v1/jobs",
            {"inputs": [sample], "output_dir": str(tmp_path / "nope")},
            400,
            "does not exist",
        ),
        ("POST", "/v1/jobs", {"inputs": [sample], "strength": 1.5}, 422, "strength"),
        ("POST", "/v1/jobs", {"inputs": [sample], "format": "gif"}, 422, "format"),
        ("POST", "/v1/jobs", {"inputs": []}, 422, "inputs"),
        ("POST", "/v1/jobs", {"inputs": [sample], "colour": 1}, 422, "colour"),
        ("POST", "/v1/preview", {"input": str(shoot / "missing.dng")}, 400, "no such file"),
        ("POST", "/v1/preview", {"input": str(shoot)}, 400, "not a regular file"),
        ("POST", "/v1/preview", {"input": str(text), "roi": [0, 0, 8, 8]}, 400, "photo.dng"),
        ("POST", "/v1/preview", {"input": str(jpeg), "roi": [0, 0, 8, 8]}, 400, "JPEG"),
        ("POST", "/v1/preview", {"input": sample, "roi": [700, 0, 100, 100]}, 400, "outside the 768x512"),
        ("POST", "/v1/preview", {"input": sample, "roi": [0, 0, 0, 10]}, 400, "empty"),
        ("POST", "/v1/preview", {"input": sample, "roi": [0, 0, 10]}, 422, "roi"),
        ("POST", "/v1/preview", {"input": sample, "roi": [0, 0, 8, 8], "strength": -0.1}, 422, "strength"),
        ("POST", "/v1/preview", {"input": sample, "max_size": 4}, 422, "max_size"),
    ]
    for method, path, body, expected, words in cases:
        status, _, answer = api.call(method, path, body)
        assert status == expected, (body, answer)
        assert set(answer) == {"error", "code"} and words in answer["error"], (body, answer)
        assert "\n" not in answer["error"] and "Traceback" not in answer["error"]
    status, _, answer = api.call("POST", "/v1/jobs", raw=b"{not json")
    assert status == 422 and answer["code"] == "invalid_request"
    assert_serving(api)


def test_an_unwritable_output_folder_is_refused(api, shoot, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root writes anywhere: use a read-only mount if there is one
            folder = next((p for p in ("/proc/sys", "/sys") if not os.access(p, os.W_OK)), None)
            if folder is None:
                pytest.skip("running as root with no read-only folder to try")
        status, _, answer = api.call(
            "POST", "/v1/jobs", {"inputs": [str(shoot / "sample.dng")], "output_dir": str(folder)}
        )
        assert status == 400 and "not writable" in answer["error"]
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_an_oversize_body_is_refused(api, shoot):
    paths = [str(shoot / "sample.dng")] * 20000
    status, _, answer = api.call("POST", "/v1/jobs", {"inputs": paths})
    assert status == 413 and answer["code"] == "too_large"
    status, _, answer = api.call("POST", "/v1/preview", raw=b"x" * 300_000)
    assert status == 413
    assert_serving(api)


def test_openapi_is_published(api):
    status, _, schema = api.call("GET", "/openapi.json", token=None)
    assert status == 200 and schema["info"]["title"] == "rddm engine"
    assert {"/v1/health", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/preview", "/v1/info"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert TOKEN not in str(schema)
