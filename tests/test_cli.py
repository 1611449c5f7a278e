"""The `rddm` console script end to end: output, exit status, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, shared_data

RDDM = str(Path(sys.executable).parent / "rddm")
SAMPLE = REPO / "engine" / "rddm" / "data" / "sample.dng"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RDDM, *args], capture_output=True, text=True, timeout=120)


def test_info_json_on_real_raws():
    paths = [
        shared_data("raw/native/canon_eos_d30_imagemeta.CRW"),
        shared_data("raw/gopro_crops/gopro_fusion_GPFR7066_crop_GBRG.dng"),
    ]
    result = run("info", "--json", *map(str, paths))
    assert result.returncode == 0, result.stderr
    canon, gopro = (json.loads(line) for line in result.stdout.splitlines())
    assert canon["cfa_pattern"] == "RGGB" and canon["model"] == "Canon EOS D30"
    assert canon["black_level"] == [127.0, 128.0, 128.0, 128.0] and canon["white_level"] == 4095.0
    assert gopro["cfa_pattern"] == "GBRG" and gopro["iso"] == 100.0
    assert (gopro["width"], gopro["height"]) == (1536, 1024)


def test_info_on_the_bundled_sample():
    result = run("info", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert "cfa_pattern          RGGB" in result.stdout
    assert "iso                  3200.0" in result.stdout


def test_info_failures_are_one_line_each_with_status_2(tmp_path):
    fake = tmp_path / "fake photo.NEF"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(fake, format="JPEG")
    result = run("info", str(fake), str(tmp_path / "missing.CR2"), str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines == [
        f"error: {fake}: a JPEG image, not a camera RAW file",
        f"error: {tmp_path / 'missing.CR2'}: no such file",
        f"error: {tmp_path}: is a directory, not a RAW file",
    ]
    assert result.stdout == ""


def test_info_warns_in_one_line_when_no_colour_matrix():
    result = run("info", str(shared_data("raw/native/RAW_KODAK_DC50.KDC")))
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("warning: ")
    assert "sRGB-equivalent" in result.stderr


def test_synth_writes_pairs_and_reports_json(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((24, 30, 3), 120, np.uint8)).save(photos / "grey.png")
    result = run(
        "synth",
        str(photos),
        str(tmp_path / "pairs"),
        "--patterns",
        "bggr",
        "gbrg",
        "--iso",
        "800",
        "--seed",
        "3",
        "--json",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pairs"] == 2
    assert sorted(p.name for p in (tmp_path / "pairs").iterdir()) == [
        "grey_BGGR_iso800_hq.tiff",
        "grey_BGGR_iso800_lq.dng",
        "grey_GBRG_iso800_hq.tiff",
        "grey_GBRG_iso800_lq.dng",
        "manifest.json",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["synth", "/nonexistent", "/tmp/x"], "error: /nonexistent: not a directory of images"),
        (["synth", ".", "/tmp/x", "--patterns", "RGBW"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
