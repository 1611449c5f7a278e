"""`rddm eval` on two small images: the table, the plots and sane classical numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rddm.evaluate.run import best_classical, scores
from tests.conftest import random_tiny

RDDM = str(Path(sys.executable).parent / "rddm")


def rddm_eval(model_dir, photos, *args):
    """``rddm eval`` of the untrained test model on the images in ``photos``."""
    command = [RDDM, "eval", "--model", f"tiny={model_dir}", "--allow-untrained", "--data", str(photos)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)


def test_eval_writes_table_and_plots(tiny_model_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[0:72, 0:72] / 9.0
    for index in range(2):
        image = 0.5 + 0.35 * np.stack([np.sin(xx + index), np.cos(yy), np.sin(xx + yy)], -1)
        Image.fromarray((image * 255).astype(np.uint8)).save(photos / f"img{index}.png")
    out = tmp_path / "eval"
    result = rddm_eval(
        tiny_model_dir,
        photos,
        "--levels",
        "none",
        "high",
        "--patterns",
        "RGGB",
        "GBRG",
        "--strengths",
        "0",
        "1",
        "--canonical-shift",
        "--workers",
        "2",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    report = (out / "report.md").read_text()
    for method in ("tiny s=0", "tiny s=1", "tiny (RGGB adapter + shift) s=1"):
        assert f"| {method} |" in report
    for chain in ("ahd", "aahd", "dht"):  # each with the better of its two denoisers
        assert f"| {chain}+nlm |" in report or f"| {chain}+bm3d |" in report
    assert "## photos: PSNR dB / SSIM / HaarPSI / ST-LPIPS (lower is better)" in report
    assert (out / "psnr_vs_noise.png").stat().st_size > 10_000
    assert (out / "crops.png").stat().st_size > 10_000
    rows = json.loads((out / "results.json").read_text())["rows"]
    tried = {(r["method"], r["denoise"]) for r in rows if "denoise" in r}
    assert {("dht+nlm", 3), ("dht+bm3d", 0.04)} <= tried
    clean_ahd = [
        r["psnr"] for r in best_classical(rows) if r["method"].startswith("ahd") and r["level"] == "none"
    ]
    assert len(clean_ahd) == 4 and min(clean_ahd) > 28.0
    # The README's figures from this run: one model's rows, named after it, and its crop mosaic.
    script = Path(__file__).resolve().parents[2] / "scripts" / "eval_figures.py"
    docs = tmp_path / "docs"
    figures = [sys.executable, str(script), str(out), "--model", f"tiny={tiny_model_dir}"]
    result = subprocess.run([*figures, "--docs", str(docs)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    shown = (out / "figures" / "report.md").read_text()
    name = json.loads((Path(tiny_model_dir) / "model_index.json").read_text())["name"]
    assert f"| {name} s=1 |" in shown and "adapter + shift" not in shown and "| tiny s=" not in shown
    assert (docs / "eval-psnr.png").stat().st_size > 10_000
    assert Image.open(docs / "eval-crops.jpg").format == "JPEG"
    figures[-1] = f"nobody={tiny_model_dir}"  # a label the run does not have
    wrong = subprocess.run([*figures, "--docs", str(docs)], capture_output=True, text=True, timeout=600)
    assert wrong.returncode != 0 and "no rows of a model labelled 'nobody'" in wrong.stderr


def test_eval_reuses_classical_rows_and_ablates_adapters(tiny_model_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[0:48, 0:48] / 7.0
    image = 0.5 + 0.35 * np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1)
    Image.fromarray((image * 255).astype(np.uint8)).save(photos / "img.png")

    def run(out, *extra):
        return rddm_eval(
            tiny_model_dir,
            photos,
            "--patterns",
            "RGGB",
            "--strengths",
            "1",
            "--out",
            str(out),
            "--quiet",
            *extra,
        )

    # darktable-cli's chain too where darktable is installed (make test installs it as root).
    darktable = ["--darktable"] if shutil.which("darktable-cli") else []
    first = run(tmp_path / "a", "--levels", "none", "high", "--denoisers", "nlm", *darktable)
    assert first.returncode == 0, first.stderr
    earlier = tmp_path / "a" / "results.json"
    second = run(
        tmp_path / "b",
        "--levels",
        "none",
        "high",
        "--classical-from",
        str(earlier),
        "--no-adapters",
        *darktable,
    )
    assert second.returncode == 0, second.stderr
    if darktable:
        assert "| darktable+denoiseprofile |" in (tmp_path / "b" / "report.md").read_text()
    rows_a = json.loads(earlier.read_text())["rows"]
    rows_b = json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    classical = lambda rows: sorted(  # noqa: E731  (same rows; darktable's come per level at the end)
        (r for r in rows if "denoise" in r and "bm3d" not in r["method"]),
        key=lambda r: json.dumps(r, sort_keys=True),
    )
    assert classical(rows_a) == classical(rows_b) and len(classical(rows_a)) > 0
    # The earlier run had no BM3D: its rows are computed now, for every pair, the rest reused.
    bm3d = {(r["image"], r["level"], r["method"]) for r in rows_b if "+bm3d" in r["method"]}
    assert bm3d == {
        ("img", level, f"{chain}+bm3d") for level in ("none", "high") for chain in ("ahd", "aahd", "dht")
    }
    methods = {r["method"] for r in rows_b}
    assert {"tiny s=1", "tiny (adapters off) s=1"} <= methods
    # The untrained test model's adapters are perturbed: switching them off changes its output.
    by_method = {(r["method"], r["level"]): r["psnr"] for r in rows_b}
    assert by_method[("tiny s=1", "high")] != by_method[("tiny (adapters off) s=1", "high")]
    # BM3D after DHT only: the other chains' BM3D rows are neither computed nor reused.
    third = run(
        tmp_path / "d",
        "--levels",
        "none",
        "high",
        "--classical-from",
        str(tmp_path / "b" / "results.json"),
        "--bm3d-after",
        "dht",
        *darktable,
    )
    assert third.returncode == 0, third.stderr
    rows_d = json.loads((tmp_path / "d" / "results.json").read_text())["rows"]
    assert {r["method"] for r in rows_d if "+bm3d" in r["method"]} == {"dht+bm3d"}
    assert classical(rows_d) == classical(rows_a)
    # Other pairs than the earlier run's: refused in one line, nothing reused by mistake.
    other = run(tmp_path / "c", "--levels", "none", "--classical-from", str(earlier))
    assert other.returncode != 0
    assert other.stderr.strip().splitlines() == [
        f"error: {earlier}: made with other settings (levels); run without it"
    ]
    # A results.json of the LibRaw call before its white-level fix lends only darktable's rows.
    stale = json.loads(earlier.read_text())
    assert stale.pop("libraw_rows") == 2
    for row in stale["rows"]:
        if "denoise" in row and not row["method"].startswith("darktable"):
            row["psnr"] = -1.0
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    fourth = run(
        tmp_path / "e",
        "--levels",
        "none",
        "high",
        "--denoisers",
        "nlm",
        "--classical-from",
        str(tmp_path / "stale.json"),
        *darktable,
    )
    assert fourth.returncode == 0, fourth.stderr
    rows_e = json.loads((tmp_path / "e" / "results.json").read_text())["rows"]
    assert classical(rows_e) == classical(rows_a)


def test_eval_on_the_usual_protocols_srgb_mosaics(tiny_model_dir, tmp_path):
    """``--mosaic srgb``: linear sRGB mosaics with neutral white balance (the usual demosaicking
    protocol's); other pairs than the camera mosaics', so an earlier camera run is not reused."""
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[0:48, 0:48] / 5.0
    image = 0.5 + 0.45 * np.stack([np.sin(xx), np.cos(yy + xx), np.sin(xx - yy)], -1)
    Image.fromarray((image * 255).astype(np.uint8)).save(photos / "img.png")

    def run(out, *extra):
        settings = ["--levels", "none", "--patterns", "GRBG", "--strengths", "0", "--denoisers", "none"]
        return rddm_eval(
            tiny_model_dir, photos, *settings, "--workers", "1", "--out", str(out), "--quiet", *extra
        )

    srgb, camera = run(tmp_path / "s", "--mosaic", "srgb"), run(tmp_path / "c")
    assert srgb.returncode == 0 and camera.returncode == 0, srgb.stderr + camera.stderr
    assert "Mosaics: linear sRGB with neutral white balance" in (tmp_path / "s" / "report.md").read_text()
    assert "Mosaics: real cameras' colour spaces" in (tmp_path / "c" / "report.md").read_text()
    results = [json.loads((tmp_path / f / "results.json").read_text()) for f in "sc"]
    assert [r["settings"]["mosaic"] for r in results] == ["srgb", "camera"]
    aahd = [[r["psnr"] for r in rows["rows"] if r["method"] == "aahd+none"] for rows in results]
    assert len(aahd[0]) == len(aahd[1]) == 1  # the demosaic alone, no denoiser
    assert aahd[0] != aahd[1] and min(aahd[0] + aahd[1]) > 25.0
    alone = run(tmp_path / "m", "--mosaic", "srgb", "--demosaics")  # no classical chain: the model's rows
    assert alone.returncode == 0, alone.stderr
    rows = json.loads((tmp_path / "m" / "results.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["tiny s=0"]
    assert rows[0]["psnr"] == next(r["psnr"] for r in results[0]["rows"] if r["method"] == "tiny s=0")
    again = run(tmp_path / "x", "--mosaic", "srgb", "--classical-from", str(tmp_path / "c" / "results.json"))
    assert again.returncode != 0
    assert again.stderr.strip().splitlines()[-1].endswith("made with other settings (mosaic); run without it")


def test_scores_of_identical_and_noisy_images():
    image = np.random.default_rng(0).uniform(size=(40, 40, 3)).astype(np.float32)
    same = scores(image, image)
    assert same["psnr"] > 100 and same["ssim"] > 0.999 and same["haarpsi"] > 0.99 and same["stlpips"] < 1e-6
    noisy = np.clip(image + np.random.default_rng(1).normal(0, 0.1, image.shape), 0, 1).astype(np.float32)
    slightly = np.clip(image + np.random.default_rng(1).normal(0, 0.02, image.shape), 0, 1).astype(np.float32)
    noisy_scores, slight_scores = scores(noisy, image), scores(slightly, image)
    assert 15 < noisy_scores["psnr"] < 25
    assert noisy_scores["stlpips"] > slight_scores["stlpips"] > 0
    assert noisy_scores["haarpsi"] < slight_scores["haarpsi"]


def test_libraw_keeps_the_mosaics_white_level_when_its_data_come_near_it():
    """LibRaw's default takes the data's maximum as white once it passes 0.75 of the white level,
    brightening the whole picture (it cost the classical rows up to 7 dB on such pairs until 2026-11-30)."""
    from rddm.evaluate.baselines import libraw_demosaic

    xyz_to_cam = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.05, 0.15, 0.8]])
    cfa = np.full((64, 64), 0.4, np.float32)
    cfa[30:34, 30:34] = 0.9  # a highlight past 0.75 of white
    for algorithm in ("ahd", "dht"):
        rgb = libraw_demosaic(cfa, "RGGB", (1.0, 1.0, 1.0), xyz_to_cam, algorithm)
        flat = rgb[:16, :16]
        np.testing.assert_allclose(flat, 0.4, atol=2e-3)


def test_eval_says_when_a_model_has_no_adapters_to_ablate(tmp_path):
    """The shipped model is canonical (no adapters): the adapter ablations add no row, and say so."""
    folder = tmp_path / "canonical"
    random_tiny((), {"name": "test-canonical", "canonical_pattern": "RGGB"}).save_pretrained(folder)
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[0:48, 0:48] / 7.0
    image = 0.5 + 0.35 * np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1)
    Image.fromarray((image * 255).astype(np.uint8)).save(photos / "img.png")
    out = tmp_path / "eval"
    result = rddm_eval(
        folder, photos, "--patterns", "GRBG", "--levels", "none", "--strengths", "1", "--demosaics",
        "--canonical-shift", "--no-adapters", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "note: tiny has no adapters (canonical for RGGB)" in result.stderr
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r["method"] for r in rows} == {"tiny s=1"} and len(rows) == 1


def test_issue_protocol_script_scores_encoded_mosaics(tmp_path):
    """scripts/issue_protocol.py: bilinear and LibRaw on the encoded mosaic, the shipped model on its
    decoded samples, 10 px border. A smooth image: every method is close, bilinear exact but for its
    curvature error, and each row is the script's own PSNR of that method's output."""
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[0:64, 0:64] / 16.0
    image = 0.5 + 0.3 * np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1)
    Image.fromarray((image * 255).astype(np.uint8)).save(photos / "smooth.png")
    script = Path(__file__).resolve().parents[2] / "scripts" / "issue_protocol.py"
    out = tmp_path / "protocol.json"
    result = subprocess.run(
        [sys.executable, str(script), "--model", "rddm-tiny", "--data", str(photos), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["photos"]["smooth"]
    assert list(rows) == ["bilinear", "ahd", "aahd", "rddm-tiny"]
    assert all(35 < psnr < 80 for psnr in rows.values()), rows  # a smooth image: every method close
    assert "photos: bilinear" in result.stdout.splitlines()[-1]

    import importlib.util

    from rddm.raw.cfa import mosaic_rgb
    from rddm.synth.dataset import read_srgb

    spec = importlib.util.spec_from_file_location("issue_protocol", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    encoded = read_srgb(photos / "smooth.png")
    bilinear = module.bilinear(mosaic_rgb(encoded, "RGGB"))
    assert abs(module.psnr(bilinear, encoded) - rows["bilinear"]) < 1e-6
