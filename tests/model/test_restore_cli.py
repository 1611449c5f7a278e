"""`rddm restore` end to end: real files in, DNG/TIFF/PNG/JPEG out, names, exit status, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from rddm.errors import LinearRawError
from rddm.raw import read_raw
from tests.conftest import REPO, shared_data

RDDM = str(Path(sys.executable).parent / "rddm")
SAMPLE = REPO / "engine" / "rddm" / "data" / "sample.dng"


def restore(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RDDM, "restore", "--quiet", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture
def workdir(tmp_path):
    folder = tmp_path / "shoot ü 'x'"
    folder.mkdir()
    (folder / "my sample.dng").write_bytes(SAMPLE.read_bytes())
    return folder


def test_untrained_model_is_refused(tiny_model_dir, workdir):
    result = restore(str(workdir / "my sample.dng"), "--model", str(tiny_model_dir))
    assert result.returncode == 2
    assert "holds untrained weights: it does not restore anything" in result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["my sample.dng"]


def test_dng_next_to_the_raw_never_overwritten(tiny_model_dir, workdir):
    source = workdir / "my sample.dng"
    before = source.read_bytes()
    args = [str(source), "--model", str(tiny_model_dir), "--allow-untrained", "--json", "--tile", "256"]
    first, second = restore(*args), restore(*args)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    outputs = [json.loads(r.stdout)["output"] for r in (first, second)]
    assert [Path(p).name for p in outputs] == ["my sample_rddm.dng", "my sample_rddm_1.dng"]
    assert source.read_bytes() == before
    with tifffile.TiffFile(outputs[0]) as tif:
        page = tif.pages[0]
        assert page.photometric == 34892 and page.shape == (512, 768, 3)
        assert "AsShotNeutral" in page.tags and "ColorMatrix1" in page.tags
    with pytest.raises(LinearRawError):
        read_raw(outputs[0])
    third = restore(*args, "--overwrite")
    assert json.loads(third.stdout)["output"] == outputs[0]


@pytest.mark.parametrize("fmt, suffix", [("tiff", ".tif"), ("png", ".png"), ("jpeg", ".jpg")])
def test_rendered_formats_into_an_output_folder(tiny_model_dir, workdir, tmp_path, fmt, suffix):
    out = tmp_path / "out"
    out.mkdir()
    source = workdir / "my sample.dng"
    result = restore(
        str(source), "--model", str(tiny_model_dir), "--allow-untrained", "--format", fmt, "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    written = out / f"my sample_rddm{suffix}"
    assert result.stdout.strip() == str(written)
    with Image.open(written) as image:
        assert image.size == (768, 512)


def test_real_raw_and_a_failure_in_one_run(tiny_model_dir, tmp_path):
    real = shared_data("raw/plain/isp_mushfiqulalam_nikon/DSC_1339_768x512_rggb.dng")
    fake = tmp_path / "fake.NEF"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(fake, format="JPEG")
    result = restore(
        str(real),
        str(fake),
        "--model",
        str(tiny_model_dir),
        "--allow-untrained",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["output"].endswith("DSC_1339_768x512_rggb_rddm.dng")
    assert lines[1] == {"input": str(fake), "error": f"{fake}: a JPEG image, not a camera RAW file"}
    assert result.stderr.strip() == f"error: {fake}: a JPEG image, not a camera RAW file"
    with tifffile.TiffFile(lines[0]["output"]) as tif:
        restored = tif.pages[0].asarray()
    assert restored.shape == (512, 768, 3) and np.isfinite(restored).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strength", "1.5"], "1.5 is not a strength in [0, 1]"),
        (["--format", "gif"], "invalid choice: 'gif'"),
        (["--model", "/nonexistent/model"], "/nonexistent/model: no such model folder"),
        (
            ["--out", "/nonexistent/dir", "--allow-untrained"],
            "/nonexistent/dir: output directory does not exist",
        ),
    ],
)
def test_usage_errors(tiny_model_dir, args, message):
    model = [] if "--model" in args else ["--model", str(tiny_model_dir)]
    result = restore(str(SAMPLE), *model, *args)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode in (1, 2)


def test_fp16_on_the_cpu_is_refused(tiny_model_dir, workdir):
    result = restore(
        str(workdir / "my sample.dng"),
        *("--model", str(tiny_model_dir), "--allow-untrained", "--device", "cpu", "--precision", "fp16"),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --precision fp16: the CPU runs in float32, or in bfloat16 where it has the instructions"
    ]
    assert sorted(p.name for p in workdir.iterdir()) == ["my sample.dng"]


def test_bf16_on_the_cpu_runs_where_the_cpu_has_the_instructions(tiny_model_dir, workdir):
    """bf16 on the CPU: close to fp32 where the CPU computes bfloat16 (AVX512-BF16 or AMX), one
    clear line where it does not (the refusal itself: test_pipeline's bad-arguments test)."""
    from rddm.model.pipeline import cpu_has_bfloat16

    options = ("--model", str(tiny_model_dir), "--allow-untrained", "--device", "cpu", "--format", "tiff")
    outputs = {}
    for precision in ("bf16", "fp32"):
        folder = workdir / precision
        folder.mkdir()
        result = restore(
            str(workdir / "my sample.dng"), *options, "--precision", precision, "--out", str(folder)
        )
        if precision == "bf16" and not cpu_has_bfloat16():
            assert result.returncode == 2 and "no bfloat16 instructions" in result.stderr
            pytest.skip("this CPU has no bfloat16 instructions")
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr and "should be kept in float32" not in result.stderr
        outputs[precision] = tifffile.imread(folder / "my sample_rddm.tif").astype(np.float64) / 65535
    difference = np.abs(outputs["bf16"] - outputs["fp32"])
    assert 0 < difference.mean() < 0.01 and difference.max() < 0.2
