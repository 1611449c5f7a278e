"""CMB-LoRA: one peft LoRA adapter per Bayer pattern on the UNet and the RVAE encoder.

Adapters are named after the pattern in lower case (``rggb``, ``bggr``, ``grbg``, ``gbrg``). The
pipeline switches on the adapter of each image's pattern; a model may ship any subset.
"""

from __future__ import annotations

import warnings

import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn

from rddm.raw.cfa import check_pattern

# peft matches a string target as a regular expression on the full module name.
UNET_TARGETS = r".*(conv1|conv2|conv_shortcut|to_q|to_k|to_v|to_out\.0|proj_in|proj_out)"
ENCODER_TARGETS = r"encoder\..*(conv_in|conv1|conv2|conv_shortcut|downsamplers\.0\.conv|conv_out)"


def adapter_name(cfa_pattern: str) -> str:
    """The adapter name of a Bayer pattern: ``"RGGB"`` -> ``"rggb"``."""
    return check_pattern(cfa_pattern).lower()


def lora_config(rank: int, targets: str) -> LoraConfig:
    """A LoRA config of ``rank`` on the modules matching ``targets`` (alpha = rank: scale 1)."""
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights="gaussian")


def add_pattern_adapter(unet: nn.Module, rvae: nn.Module, cfa_pattern: str, rank: int) -> str:
    """Add (untrained) adapters for ``cfa_pattern`` to both models; returns the adapter name."""
    name = adapter_name(cfa_pattern)
    with warnings.catch_warnings():
        # Several adapters on one model is the point of CMB-LoRA, not the mistake peft warns about.
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        unet.add_adapter(lora_config(rank, UNET_TARGETS), adapter_name=name)
        rvae.add_adapter(lora_config(rank, ENCODER_TARGETS), adapter_name=name)
    return name


def adapter_weights(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """The LoRA tensors of one adapter (for saving)."""
    return {k: v.contiguous() for k, v in get_peft_model_state_dict(model, adapter_name=name).items()}


def load_adapter_weights(model: nn.Module, name: str, weights: dict[str, torch.Tensor]) -> None:
    """Load saved LoRA tensors into the already added adapter ``name``; raises on a mismatch."""
    result = set_peft_model_state_dict(model, weights, adapter_name=name)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"adapter {name!r} has weights for unknown layers: {unexpected[:3]}")


def base_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's own weights without any LoRA layer, named as in the plain model."""
    weights = {}
    for key, value in model.state_dict().items():
        if "lora_" in key:
            continue
        weights[key.replace(".base_layer.", ".")] = value.contiguous()
    return weights
