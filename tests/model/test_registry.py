"""Model folders: round trip, and a clear error naming the file for every broken part."""

from __future__ import annotations

import json
import shutil

import pytest

from rddm.model.registry import DEFAULT_MODEL, MODELS_DIR, ModelLoadError, load_pipeline, resolve_model


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    folder = tmp_path / "model copy"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_round_trip_keeps_everything(tiny_model_dir):
    pipeline = load_pipeline(tiny_model_dir)
    assert pipeline.adapters == ("rggb", "bggr", "grbg", "gbrg")
    assert pipeline.info["name"] == "test-tiny" and pipeline.info["trained"] is False
    assert pipeline.timestep == 999
    index = json.loads((tiny_model_dir / "model_index.json").read_text())
    assert index["format_version"] == 1 and index["_class_name"] == "RDDMPipeline"


@pytest.mark.parametrize(
    "broken, message",
    [
        ("model_index.json", "model_index.json: missing"),
        ("unet/model.safetensors", "unet/model.safetensors: missing weights file"),
        ("adapters/grbg.safetensors", "adapters/grbg.safetensors: missing weights file"),
        ("null_prompt.safetensors", "null_prompt.safetensors: missing weights file"),
        ("rvae/config.json", "rvae/config.json: missing"),
    ],
)
def test_missing_parts_are_named(model_copy, broken, message):
    (model_copy / broken).unlink()
    with pytest.raises(ModelLoadError, match=message):
        load_pipeline(model_copy)


def test_corrupt_weights_are_named(model_copy):
    path = model_copy / "rvae" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=r"rvae/model.safetensors: corrupt weights"):
        load_pipeline(model_copy)


def test_weights_that_do_not_fit_the_config(model_copy):
    config = json.loads((model_copy / "rvae" / "config.json").read_text())
    config["block_out_channels"] = [16, 32, 32]
    (model_copy / "rvae" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="rvae/model.safetensors: weights do not fit"):
        load_pipeline(model_copy)


def test_other_format_version(model_copy):
    index = json.loads((model_copy / "model_index.json").read_text())
    index["format_version"] = 7
    (model_copy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="model format 7, this rddm reads format 1"):
        load_pipeline(model_copy)


def test_unknown_names_and_files(tmp_path):
    with pytest.raises(ModelLoadError, match="no-such-model: no such model folder"):
        resolve_model("no-such-model")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="a model is a folder, not a file"):
        resolve_model(tmp_path / "weights.bin")


def test_shipped_default_resolves_to_the_package_folder():
    if not (MODELS_DIR / DEFAULT_MODEL).is_dir():
        pytest.skip("the trained rddm-tiny is not shipped in this checkout")
    assert resolve_model(DEFAULT_MODEL) == MODELS_DIR / DEFAULT_MODEL
