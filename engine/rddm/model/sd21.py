"""Build the paper-sized ``rddm-sd21`` from a local diffusers-format Stable Diffusion 2.1-base folder.

Nothing is downloaded: the folder must hold ``vae/``, ``unet/``, ``scheduler/`` and, for the stored
null-prompt embedding, ``text_encoder/`` and ``tokenizer/`` (the text encoder runs once, here).
The RVAE takes SD's VAE weights: the encoder's input convolution is adapted from RGB to the packed
R, Gr, Gb, B planes (R <- R, each green <- G / 2, B <- B) and its first downsampling is dropped so the
latent keeps SD's 1/8 scale of the full image; the decoder keeps SD's weights and outputs linear RGB.
The result still needs training (``rddm train``) before it restores anything: it is saved untrained.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from rddm.model.lora import add_pattern_adapter
from rddm.model.pipeline import RDDMPipeline
from rddm.model.registry import ModelLoadError, save_pipeline
from rddm.model.rvae import RawVAE
from rddm.raw.cfa import CFA_PATTERNS


def _require(folder: Path, part: str) -> Path:
    path = folder / part
    if not path.is_dir():
        raise ModelLoadError(f"{path}: missing (expected a diffusers-format SD 2.1-base folder)")
    return path


def rvae_from_sd_vae(vae: AutoencoderKL) -> RawVAE:
    """An RVAE initialised from an SD ``AutoencoderKL`` (see the module docstring)."""
    config = vae.config
    rvae = RawVAE(
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
        mid_block_add_attention=True,
        pixel_norm=False,
        skip_connections=True,
        output_shuffle=False,
        scaling_factor=config.scaling_factor,
    )
    weights = dict(vae.state_dict())
    rgb = weights["encoder.conv_in.weight"]
    weights["encoder.conv_in.weight"] = torch.stack(
        [rgb[:, 0], rgb[:, 1] / 2, rgb[:, 1] / 2, rgb[:, 2]], dim=1
    ).contiguous()
    dropped = [k for k in weights if k.startswith("encoder.down_blocks.0.downsamplers.")]
    for key in dropped:
        del weights[key]
    missing, unexpected = rvae.load_state_dict(weights, strict=False)
    if unexpected or any(not key.startswith("skip_") for key in missing):
        raise ModelLoadError(
            f"SD VAE does not fit the RVAE: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return rvae


def null_prompt_embedding(base: Path, prompt: str = "") -> torch.Tensor:
    """SD's text-encoder output for ``prompt`` (empty: the null prompt), ``(1, 77, D)``."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(_require(base, "tokenizer"), local_files_only=True)
    encoder = CLIPTextModel.from_pretrained(_require(base, "text_encoder"), local_files_only=True)
    length = min(tokenizer.model_max_length, encoder.config.max_position_embeddings)  # 77 for SD
    tokens = tokenizer(
        [prompt], padding="max_length", max_length=length, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        return encoder(tokens.input_ids)[0].float()


def build_sd21(
    base: str | os.PathLike,
    out: str | os.PathLike,
    *,
    patterns: tuple[str, ...] = CFA_PATTERNS,
    lora_rank: int = 4,
    timestep: int = 999,
) -> Path:
    """Build ``rddm-sd21`` from ``base`` and save it (untrained adapters) as a model folder at ``out``."""
    base = Path(base)
    try:
        vae = AutoencoderKL.from_pretrained(_require(base, "vae"), local_files_only=True)
        unet = UNet2DConditionModel.from_pretrained(_require(base, "unet"), local_files_only=True)
        scheduler = DDPMScheduler.from_pretrained(_require(base, "scheduler"), local_files_only=True)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{base}: cannot load the SD 2.1 parts ({str(error).splitlines()[0]})") from None
    rvae = rvae_from_sd_vae(vae)
    names = tuple(add_pattern_adapter(unet, rvae, pattern, lora_rank) for pattern in patterns)
    pipeline = RDDMPipeline(
        rvae,
        unet,
        scheduler,
        null_prompt_embedding(base),
        timestep=timestep,
        adapters=names,
        info={"name": "rddm-sd21", "trained": False, "lora_rank": lora_rank, "base": str(base)},
    )
    return save_pipeline(pipeline, out)


# Stable Diffusion 2.1-base's configuration with every width divided by 16 (block types, layer
# counts, linear projections, 1/8 latent scale and the 77-token context are SD 2.1's own).
REDUCED_SD21_VAE = {
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
REDUCED_SD21_UNET = {
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


# Stable Diffusion 2.1-base's own VAE and UNet configuration (865.9M UNet parameters): random
# weights at these widths time the real model's arithmetic on machines without its weights.
FULL_SD21_VAE = {
    **REDUCED_SD21_VAE,
    "block_out_channels": [128, 256, 512, 512],
    "norm_num_groups": 32,
}
FULL_SD21_UNET = {
    **REDUCED_SD21_UNET,
    "block_out_channels": [320, 640, 1280, 1280],
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "norm_num_groups": 32,
}


def write_reduced_base(folder: str | os.PathLike, *, full_widths: bool = False) -> Path:
    """A diffusers-format SD 2.1-base folder with random weights, for tests and benchmarks of the
    ``rddm-sd21`` code path on machines without the real weights: at reduced widths, or at SD 2.1's
    own widths (``full_widths``; its text encoder stays small, it only makes the null prompt)."""
    import json

    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(0)
    AutoencoderKL(**(FULL_SD21_VAE if full_widths else REDUCED_SD21_VAE)).save_pretrained(folder / "vae")
    unet = FULL_SD21_UNET if full_widths else REDUCED_SD21_UNET
    UNet2DConditionModel(**unet).save_pretrained(folder / "unet")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(
        folder / "scheduler"
    )
    text = CLIPTextConfig(
        vocab_size=9,
        hidden_size=unet["cross_attention_dim"],
        intermediate_size=2 * unet["cross_attention_dim"],
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=7,
        eos_token_id=8,
        pad_token_id=0,
        projection_dim=64,
    )
    CLIPTextModel(text).save_pretrained(folder / "text_encoder")
    tokens = ["!", "a", "b", "c", "a</w>", "b</w>", "c</w>", "<|startoftext|>", "<|endoftext|>"]
    vocabulary = folder / "tokenizer"
    vocabulary.mkdir(parents=True, exist_ok=True)
    (vocabulary / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (vocabulary / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(
        str(vocabulary / "vocab.json"), str(vocabulary / "merges.txt"), pad_token="!"
    ).save_pretrained(vocabulary)
    return folder
