"""`rddm synth` folders: real DNGs that read back with what was written, reproducibly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rawpy
import tifffile
from PIL import Image

from rddm.color import render_srgb
from rddm.errors import InputError
from rddm.raw import read_raw
from rddm.synth import SynthConfig
from rddm.synth.dataset import (
    SYNTH_BLACK_LEVEL,
    SYNTH_WHITE_LEVEL,
    read_srgb,
    synthesize_directory,
)

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


@pytest.fixture
def photos(tmp_path, gradient_srgb) -> Path:
    folder = tmp_path / "photos ü"
    folder.mkdir()
    Image.fromarray((gradient_srgb * 255).round().astype(np.uint8)).save(folder / "a.png")
    noise = np.random.default_rng(0).uniform(0.1, 0.9, size=(40, 50, 3))
    Image.fromarray((noise * 255).astype(np.uint8)).save(folder / "b.jpg", quality=98)
    return folder


def _bytes_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_pairs_for_every_pattern_read_back(photos, tmp_path):
    config = SynthConfig(cfa_patterns=PATTERNS, noise="none", tone_curve=False)
    manifest_path = synthesize_directory(photos, tmp_path / "out", config, seed=1)
    manifest = json.loads(manifest_path.read_text())
    assert len(manifest["pairs"]) == 2 * 4
    for entry in manifest["pairs"]:
        lq = read_raw(manifest_path.parent / entry["lq"])
        assert lq.cfa_pattern == entry["cfa_pattern"]
        assert lq.black_level == (SYNTH_BLACK_LEVEL,) * 4
        assert lq.white_level == SYNTH_WHITE_LEVEL
        assert lq.color_matrix_source == "dng"
        np.testing.assert_allclose(lq.xyz_to_cam, entry["xyz_to_cam"], atol=1e-4)
        np.testing.assert_allclose(lq.wb_gains, entry["wb_gains"], rtol=1e-4)
        with rawpy.imread(str(manifest_path.parent / entry["lq"])) as raw:
            assert raw.raw_type == rawpy.RawType.Flat
        hq = tifffile.imread(manifest_path.parent / entry["hq"])
        assert hq.dtype == np.float32 and hq.shape == (lq.height, lq.width, 3)
        # The mosaic in the DNG is the target divided by the gains, to 14-bit precision.
        expected = hq / np.array(entry["wb_gains"], dtype=np.float32)
        channel = np.array([["RGB".index(c) for c in lq.cfa_pattern]]).reshape(2, 2)
        sampled = np.tile(channel, (lq.height // 2 + 1, lq.width // 2 + 1))[: lq.height, : lq.width]
        truth = np.take_along_axis(expected, sampled[..., None], axis=-1)[..., 0]
        assert np.abs(lq.cfa - truth).max() < 2 / (SYNTH_WHITE_LEVEL - SYNTH_BLACK_LEVEL)


def test_written_clean_target_renders_back_to_the_photo(photos, tmp_path):
    config = SynthConfig(cfa_patterns=("RGGB",), noise="none", tone_curve=False)
    manifest = json.loads(synthesize_directory(photos, tmp_path / "out", config).read_text())
    entry = next(e for e in manifest["pairs"] if e["source"].endswith("a.png"))
    hq = tifffile.imread(tmp_path / "out" / entry["hq"])
    rendered = render_srgb(hq, np.array(entry["xyz_to_cam"]))
    source = read_srgb(photos / "a.png")
    assert 10 * np.log10(1 / np.mean((rendered - source) ** 2)) > 45.0


def test_same_seed_gives_identical_files_with_any_worker_count(photos, tmp_path):
    config = SynthConfig(cfa_patterns=("GRBG", "BGGR"), noise="range")
    synthesize_directory(photos, tmp_path / "one", config, seed=5, crop=32, isos=[800, 3200])
    synthesize_directory(photos, tmp_path / "two", config, seed=5, crop=32, isos=[800, 3200], workers=2)
    synthesize_directory(photos, tmp_path / "six", config, seed=6, crop=32, isos=[800, 3200])
    one, two, six = (_bytes_of(tmp_path / n) for n in ("one", "two", "six"))
    assert len(one) == 2 * 2 * 2 * 2 + 1
    assert one == two
    assert one["a_GRBG_iso800_lq.dng"] != six["a_GRBG_iso800_lq.dng"]
    manifest = json.loads(one["manifest.json"])
    assert {e["noise"]["iso"] is not None for e in manifest["pairs"]} == {True}
    assert all(e["height"] <= 32 and e["width"] <= 32 for e in manifest["pairs"])


def test_existing_pairs_are_not_overwritten_without_asking(photos, tmp_path):
    config = SynthConfig(cfa_patterns=("RGGB",), noise="none")
    synthesize_directory(photos, tmp_path / "out", config)
    with pytest.raises(Exception, match="exists already"):
        synthesize_directory(photos, tmp_path / "out", config)
    synthesize_directory(photos, tmp_path / "out", config, overwrite=True)


def test_bad_sources(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        synthesize_directory(tmp_path / "missing", tmp_path / "out", SynthConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        synthesize_directory(tmp_path / "empty", tmp_path / "out", SynthConfig())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable image"):
        synthesize_directory(tmp_path / "bad", tmp_path / "out", SynthConfig())
