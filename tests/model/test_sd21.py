"""rddm-sd21 builds offline from a diffusers-format SD 2.1-base folder written here at reduced widths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from rddm.model.registry import ModelLoadError, load_pipeline
from rddm.model.sd21 import build_sd21, write_reduced_base
from tests.conftest import random_raw


@pytest.fixture(scope="module")
def sd21_base(tmp_path_factory):
    return write_reduced_base(tmp_path_factory.mktemp("sd21") / "stable-diffusion-2-1-base")


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
    assert pipeline.tile_multiple == 32  # the latent's 4 packed px times the UNet's 3 downsamplings
    out = pipeline(random_raw(192, 256, "GRBG"), 0.5, tile_size=64, tile_overlap=32)  # 2 x 3 tiles
    assert out.shape == (192, 256, 3) and np.isfinite(out).all()


def test_missing_parts_of_the_base_are_named(sd21_base, tmp_path):
    with pytest.raises(ModelLoadError, match="vae: missing"):
        build_sd21(tmp_path, tmp_path / "out")


def test_full_width_configuration_is_sd21_base():
    """The GPU benchmark's random rddm-sd21 has SD 2.1-base's own sizes (parameter counts of the
    published UNet and VAE), built on the meta device: no memory, no weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from rddm.model.sd21 import FULL_SD21_UNET, FULL_SD21_VAE

    with torch.device("meta"):
        unet, vae = UNet2DConditionModel(**FULL_SD21_UNET), AutoencoderKL(**FULL_SD21_VAE)
    assert sum(p.numel() for p in unet.parameters()) == 865_910_724
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
