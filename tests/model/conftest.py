"""Tiny random models, saved with save_pretrained and loaded back (nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rddm.model.configs import TINY_PROMPT_DIM, TINY_RVAE, TINY_UNET
from rddm.model.registry import build_pipeline, load_pipeline
from rddm.raw import CFA_PATTERNS, RawImage


def perturb_adapters(pipeline, seed: int = 0) -> None:
    """LoRA B matrices start at zero (adapters are no-ops): give them values, as training would."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for model in (pipeline.unet, pipeline.rvae):
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random model with all four adapters, written to a folder by save_pretrained."""
    torch.manual_seed(0)
    pipeline = build_pipeline(
        TINY_RVAE,
        TINY_UNET,
        null_prompt=torch.randn(1, 1, TINY_PROMPT_DIM),
        patterns=CFA_PATTERNS,
        info={"name": "test-tiny"},
    )
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
