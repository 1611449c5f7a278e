"""Configurations of the two model sizes (the SD 2.1 one is read from the base model's folder)."""

from __future__ import annotations

# rddm-tiny: every convolution at half resolution or below (~85 kFLOP per output pixel for both
# strength ends), per-pixel normalisation and no attention, so tiles reproduce the whole image.
TINY_RVAE = {
    "in_channels": 4,
    "out_channels": 3,
    "block_out_channels": [16, 32, 64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "mid_block_add_attention": False,
    "pixel_norm": True,
    "skip_connections": True,
    "output_shuffle": True,
    "scaling_factor": 1.0,
}

TINY_PROMPT_TOKENS, TINY_PROMPT_DIM = 1, 32

TINY_UNET = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D"],
    "mid_block_type": None,
    "block_out_channels": [64, 128],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": TINY_PROMPT_DIM,
    "attention_head_dim": 8,
}
