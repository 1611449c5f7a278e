"""scripts/ablation_adapters.py: its sides' configs differ only in the adapters or the pattern."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from rddm.train.config import load_config
from rddm.train.loop import starting_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ablation_adapters.py"


def _script():
    spec = importlib.util.spec_from_file_location("ablation_adapters", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_from_scratch_sides_differ_only_in_adapters(tmp_path):
    script = _script()
    parts = ["rvae_encoder", "rvae_decoder", "unet"]
    with_adapters = script.config_for("with-adapters", None, [*parts, "adapters"], 12, None)
    shared = script.config_for("shared", None, parts, 12, None)
    for config in (with_adapters, shared):
        assert "from_folder" not in config["model"]
        assert config["stages"][0]["steps"] == 12
        assert config["stages"][0]["learning_rate"] == 5e-4  # rddm-tiny.yaml's own
    assert with_adapters["model"]["adapters"] is True and shared["model"]["adapters"] is False
    differ = {key for key in with_adapters if with_adapters[key] != shared[key]}
    assert differ == {"name", "model", "stages"}
    assert {k for k in shared["model"] if shared["model"][k] != with_adapters["model"][k]} == {"adapters"}

    # Each side loads as a training config and builds the model it names: four adapters, or none.
    for config, patterns in ((with_adapters, 4), (shared, 0)):
        config["model"]["rvae"]["block_out_channels"] = [8, 8, 8]  # small to build
        config["model"]["unet"]["block_out_channels"] = [8, 16]
        path = tmp_path / f"{config['name']}.yaml"
        path.write_text(yaml.safe_dump(config))
        assert len(starting_model(load_config(path)).adapters) == patterns


def test_from_shipped_weights_keeps_its_learning_rate(tmp_path):
    script = _script()
    config = script.config_for("shared", tmp_path, ["unet"], 40, 2e-4)
    assert config["model"]["from_folder"] == str(tmp_path)
    assert config["stages"][0]["learning_rate"] == 2e-4
    assert config["model"]["adapters"] is True  # the folder's index decides, not the config


def test_the_canonical_side_differs_from_the_shared_one_only_in_its_pattern(tmp_path):
    script = _script()
    parts = ["rvae_encoder", "rvae_decoder", "unet"]
    shared = script.config_for("shared", None, parts, 12, None)
    canonical = script.config_for("canonical", None, parts, 12, None, "RGGB", threads=2)
    assert {key for key in canonical if canonical[key] != shared[key]} == {"name", "model", "threads"}
    assert {k for k in canonical["model"] if canonical["model"].get(k) != shared["model"].get(k)} == {
        "canonical_pattern"
    }
    canonical["model"]["rvae"]["block_out_channels"] = [8, 8, 8]
    canonical["model"]["unet"]["block_out_channels"] = [8, 16]
    path = tmp_path / "canonical.yaml"
    path.write_text(yaml.safe_dump(canonical))
    config = load_config(path)
    assert config.model["canonical_pattern"] == "RGGB" and config.threads == 2
    model = starting_model(config)
    assert model.adapters == () and model.info["canonical_pattern"] == "RGGB"
