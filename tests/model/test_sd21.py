"""rddm-sd21 builds offline from a diffusers-format SD 2.1-base folder written here at reduced widths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from rddm.model.registry import ModelLoadError, load_pipeline
from rddm.model.sd21 import build_sd21
from tests.conftest import random_raw

# Stable Diffusion 2.1-base's configuration with every width divided by 16 (block types, layer
# counts, linear projections, 1/8 latent scale and the 77-token context are SD 2.1's own).
SD21_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 16, 32, 32],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "scaling_factor": 0.18215,
}
SD21_UNET = {
    "sample_size": 64,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [32, 32, 64, 64],
    "layers_per_block": 2,
    "attention_head_dim": [2, 2, 4, 4],
    "cross_attention_dim": 64,
    "use_linear_projection": True,
    "norm_num_groups": 8,
}


def _write_tokenizer(folder):
    folder.mkdir()
    tokens = ["!", "a", "b", "c", "a</w>", "b</w>", "c</w>", "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!")
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def sd21_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("sd21") / "stable-diffusion-2-1-base"
    torch.manual_seed(0)
    AutoencoderKL(**SD21_VAE).save_pretrained(base / "vae")
    UNet2DConditionModel(**SD21_UNET).save_pretrained(base / "unet")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(
        base / "scheduler"
    )
    text = CLIPTextConfig(
        vocab_size=9,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=7,
        eos_token_id=8,
        pad_token_id=0,
        projection_dim=64,
    )
    CLIPTextModel(text).save_pretrained(base / "text_encoder")
    _write_tokenizer(base / "tokenizer")
    return base


def test_builds_offline_and_restores_tiled(sd21_base, tmp_path):
    folder = build_sd21(sd21_base, tmp_path / "rddm-sd21")
    pipeline = load_pipeline(folder)
    assert pipeline.info["name"] == "rddm-sd21" and pipeline.info["trained"] is False
    assert pipeline.adapters == ("rggb", "bggr", "grbg", "gbrg")
    assert pipeline.null_prompt.shape == (1, 77, 64)
    assert pipeline.rvae.downscale == 8  # SD's 1/8 latent scale of the full image
    vae = AutoencoderKL.from_pretrained(sd21_base / "vae")
    rgb, raw_in = vae.encoder.conv_in.weight, pipeline.rvae.encoder.conv_in.base_layer.weight
    torch.testing.assert_close(raw_in[:, 0], rgb[:, 0])
    torch.testing.assert_close(raw_in[:, 1], rgb[:, 1] / 2)
    torch.testing.assert_close(raw_in[:, 3], rgb[:, 2])
    torch.testing.assert_close(pipeline.rvae.decoder.conv_out.weight, vae.decoder.conv_out.weight)
    out = pipeline(random_raw(96, 128, "GRBG"), 0.5, tile_size=32, tile_overlap=8)
    assert out.shape == (96, 128, 3) and np.isfinite(out).all()


def test_missing_parts_of_the_base_are_named(sd21_base, tmp_path):
    with pytest.raises(ModelLoadError, match="vae: missing"):
        build_sd21(tmp_path, tmp_path / "out")
