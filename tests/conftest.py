"""Shared fixtures: the project's shared data (skipped cleanly when absent) and synthetic images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rddm.model.registry import build_pipeline, load_pipeline
from rddm.raw import CFA_PATTERNS, RawImage
from rddm.train.config import load_config

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a message when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the project's shared data is not on this machine)")
    return path


@pytest.fixture(scope="session")
def raw_info() -> list[dict]:
    """What ../shared/data/raw/raw_info.json records for each real RAW."""
    return json.loads(shared_data("raw", "raw_info.json").read_text())


@pytest.fixture
def gradient_srgb() -> np.ndarray:
    """A smooth, colourful (64, 96, 3) sRGB image in [0, 1] with no clipped values."""
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    return np.stack(
        [0.2 + 0.6 * xx / 95, 0.2 + 0.6 * yy / 63, 0.5 + 0.3 * np.sin(xx / 9) * np.cos(yy / 7)], -1
    ).astype(np.float32)


def require_darktable() -> str:
    """darktable-cli's path, or skip (make test installs darktable when run as root)."""
    path = shutil.which("darktable-cli")
    if path is None:
        pytest.skip("darktable-cli is not installed (make test installs it as root)")
    return path


TINY = load_config("rddm-tiny").model


def perturb_adapters(pipeline, seed: int = 0) -> None:
    """LoRA B matrices start at zero (adapters are no-ops): give them values, as training would."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for model in (pipeline.unet, pipeline.rvae):
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)


def pad_modes(model) -> set[str]:
    """How the padded 2-D convolutions of ``model`` pad (see rddm.model.padding)."""
    return {m.padding_mode for m in model.modules() if isinstance(m, torch.nn.Conv2d) and max(m.padding) > 0}


def random_tiny(patterns: tuple[str, ...], info: dict):
    """rddm-tiny's architecture with random weights (seed 0) and adapters for ``patterns``."""
    torch.manual_seed(0)
    return build_pipeline(
        TINY["rvae"],
        TINY["unet"],
        null_prompt=torch.randn(1, TINY["prompt_tokens"], TINY["prompt_dim"]),
        patterns=patterns,
        info=info,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random model with all four adapters, written to a folder by save_pretrained."""
    pipeline = random_tiny(CFA_PATTERNS, {"name": "test-tiny"})
    perturb_adapters(pipeline)
    folder = tmp_path_factory.mktemp("models") / "test-tiny"
    pipeline.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_pipeline(tiny_model_dir):
    return load_pipeline(tiny_model_dir)


def random_raw(height: int, width: int, pattern: str = "RGGB", seed: int = 0) -> RawImage:
    rng = np.random.default_rng(seed)
    return RawImage(cfa=rng.uniform(0.0, 0.8, (height, width)).astype(np.float32), cfa_pattern=pattern)
