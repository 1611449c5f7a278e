"""What the convolutions see beyond the edge of their input: zeros (torch's default) or the edge.

A tile's convolutions pad its edges, and a tile's outputs near a shared edge differ from the whole
image's by what that padding makes them see instead of the neighbouring pixels. Zeros are a hard
black border that a trained model answers strongly; a repeated or mirrored edge is close to what
is really there. With rddm-tiny's step-12000 weights on kodim05 at ISO 3200 in tiles of 256 packed
px overlapping by 32, zeros left the tiled restore up to 1.75e-2 from the whole image (19 levels of
the 8-bit sRGB rendering), repeated edges 1.1e-3 (2 levels) (``make tile-error``).

``replicate`` works at every size (a mirror needs more pixels than the padding); the mode is kept
in the model index (``padding_mode``) and applies to every padded convolution of the RVAE, its LoRA
layers included. The UNet pads as ``unet_padding_mode`` says, zeros unless given: its tiles were
exact either way while its features were nearly constant (``make tile-error``'s "UNet tiled alone"
was 0), and with the step-16500 weights, trained with zeros, replicated edges in the UNet cost the
restored end another 0.012 dB of validation PSNR (28.187 against 28.199 dB; the RVAE's cost it
0.094 dB, 28.199 against 28.293 with zeros, and the fidelity end nothing:
``scripts/validate_model.py --padding zeros [--unet-padding replicate]``). A livelier UNet (step
26100) made the UNet the largest seam source (5.4e-4 of kodim05's 1.40e-3 at 256/32), hence the
key: a model trained with it pads its UNet with the edge too.
"""

from __future__ import annotations

from torch import nn

PADDING_MODES = ("zeros", "replicate", "reflect")


def use_padding(mode: str, *models: nn.Module) -> None:
    """Pad every padded 2-D convolution of ``models`` with ``mode``."""
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, not {mode!r}")
    for model in models:
        for module in model.modules():
            if isinstance(module, nn.Conv2d) and any(module._reversed_padding_repeated_twice):
                module.padding_mode = mode
