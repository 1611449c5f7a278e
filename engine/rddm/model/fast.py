"""Faster CPU inference of diffusers' residual blocks and upsamplers, the same outputs to rounding.

On the CPU a third of a decode went to passes over the feature maps between the convolutions, the
largest of them the replicated-edge padding (``rddm.model.padding``): each padded convolution
first copies its whole input into a padded one (``F.pad``), after the normalisation and the SiLU
each made a copy of their own. Two rewrites of the forward passes, for inference only:

- :func:`padded_activation`: a block's normalisation writes straight into the middle of the padded
  buffer its convolution reads, the SiLU runs in place there, and only the four one-pixel edges are
  filled; the convolution then runs unpadded on that buffer. Every value is what the padded
  convolution saw before, up to rounding: torch's vector and scalar SiLU loops round apart, and
  oneDNN may sum a buffer in another layout than ``F.pad``'s output in another order (the
  shipped model's restores move by under 1e-6).
- :func:`upsample_conv`: a nearest-neighbour x2 upsampling followed by a 3x3 convolution is, for
  each of the four output phases, a 2x2 convolution of the low-resolution input with summed kernel
  taps: 16 instead of 36 multiply-adds per input channel and low-resolution pixel (outputs move by
  float rounding only: the taps are summed before they multiply). The low-resolution edge padding
  is the upsampled one's, for replicated edges and for zeros alike. In float32 only: summed taps
  stored in bfloat16 would round the kernels.

:func:`use_fast_inference` installs them on a model's :class:`ResnetBlock2D` and
:class:`Upsample2D` instances (not on the classes: nothing else in the process changes). Each
falls back to diffusers' own forward whenever it could differ: while autograd records (training),
in training mode, on another device than the CPU (not measured there), with a LoRA adapter that
is not merged, or with any option of the blocks that rddm's models do not use.
"""

from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.functional as F
from diffusers.models.resnet import ResnetBlock2D, Upsample2D
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from rddm.model.norm import AffineNorm


def plain_conv(conv: nn.Module) -> nn.Conv2d | None:
    """The ``nn.Conv2d`` that computes ``conv``'s output (a merged LoRA layer's base layer), if it
    is a 3x3, stride-1, one-pixel padded convolution that pads with zeros or replicated edges."""
    if isinstance(conv, BaseTunerLayer):
        # peft runs the base layer alone when an adapter is merged into it, or when none is active
        # here; disabling adapters unmerges first (a side effect left to peft's own forward)
        if conv.disable_adapters:
            alone = not conv.merged
        else:
            own = getattr(conv, "lora_A", {})
            alone = conv.merged or not any(name in own for name in conv.active_adapters)
        if not alone:
            return None
        conv = conv.get_base_layer()
    if type(conv) is not nn.Conv2d:
        return None
    simple = conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
    if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or not simple:
        return None
    return conv if conv.padding_mode in ("zeros", "replicate") else None


def _layout(sample: torch.Tensor) -> torch.memory_format:
    channels_last = sample.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


def _empty_as(sample: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` with ``sample``'s dtype, device and memory layout."""
    return torch.empty(shape, dtype=sample.dtype, device=sample.device, memory_format=_layout(sample))


def padded_activation(norm: nn.Module | None, sample: torch.Tensor, mode: str) -> torch.Tensor:
    """``pad(silu(norm(sample)), 1)`` (``mode``: ``zeros`` or ``replicate``) in one buffer, in the
    input's memory layout."""
    batch, channels, height, width = sample.shape
    buffer = _empty_as(sample, (batch, channels, height + 2, width + 2))
    inner = buffer[:, :, 1:-1, 1:-1]
    if isinstance(norm, AffineNorm) and norm.affine:
        torch.addcmul(norm.bias[None, :, None, None], sample, norm.weight[None, :, None, None], out=inner)
    else:
        inner.copy_(sample if norm is None else norm(sample))
    F.silu(inner, inplace=True)
    if mode == "zeros":
        buffer[:, :, 0].zero_()
        buffer[:, :, -1].zero_()
        buffer[:, :, :, 0].zero_()
        buffer[:, :, :, -1].zero_()
    else:  # rows first, then the columns with the corners
        buffer[:, :, 0, 1:-1] = buffer[:, :, 1, 1:-1]
        buffer[:, :, -1, 1:-1] = buffer[:, :, -2, 1:-1]
        buffer[:, :, :, 0] = buffer[:, :, :, 1]
        buffer[:, :, :, -1] = buffer[:, :, :, -2]
    return buffer


def _unpadded(conv: nn.Conv2d, buffer: torch.Tensor) -> torch.Tensor:
    return F.conv2d(buffer, conv.weight, conv.bias, 1, 0)


_diffusers_only = False


@contextlib.contextmanager
def diffusers_forward():
    """Within it every block in the process runs diffusers' own forward, the tile workers' threads
    included: for measuring the two against each other, not while other restores run."""
    global _diffusers_only
    before, _diffusers_only = _diffusers_only, True
    try:
        yield
    finally:
        _diffusers_only = before


def _inference(module: nn.Module, sample: torch.Tensor) -> bool:
    if _diffusers_only:
        return False
    return not torch.is_grad_enabled() and not module.training and sample.device.type == "cpu"


def resnet_forward(self: ResnetBlock2D, input_tensor: torch.Tensor, temb=None, *args, **kwargs):
    """:meth:`ResnetBlock2D.forward` with :func:`padded_activation` (see the module docstring)."""
    conv1, conv2 = plain_conv(self.conv1), plain_conv(self.conv2)
    usable = (
        _inference(self, input_tensor)
        and not args
        and not kwargs
        and conv1 is not None
        and conv2 is not None
        and self.upsample is None
        and self.downsample is None
        and isinstance(self.nonlinearity, nn.SiLU)
        # without a time embedding "group" (the VAE's blocks) normalises as "default"
        and (self.time_embedding_norm == "default" or temb is None and self.time_embedding_norm == "group")
        and (temb is None or self.time_emb_proj is not None)
    )
    if not usable:
        return ResnetBlock2D.forward(self, input_tensor, temb, *args, **kwargs)
    hidden = _unpadded(conv1, padded_activation(self.norm1, input_tensor, conv1.padding_mode))
    if temb is not None:
        if not self.skip_time_act:
            temb = self.nonlinearity(temb)
        hidden = hidden + self.time_emb_proj(temb)[:, :, None, None]
    hidden = _unpadded(conv2, padded_activation(self.norm2, hidden, conv2.padding_mode))
    shortcut = self.conv_shortcut(input_tensor) if self.conv_shortcut is not None else input_tensor
    hidden += shortcut
    if self.output_scale_factor != 1.0:
        hidden /= self.output_scale_factor
    return hidden


def phase_kernels(weight: torch.Tensor) -> list[torch.Tensor]:
    """The four ``(out, in, 2, 2)`` kernels, phases (0, 0), (0, 1), (1, 0), (1, 1), of a 3x3
    ``weight`` run on a nearest-neighbour x2 upsampling: output row ``2i`` reads low-resolution
    rows ``i - 1`` (tap 0) and ``i`` (taps 1 and 2), row ``2i + 1`` rows ``i`` (taps 0 and 1) and
    ``i + 1`` (tap 2); the columns alike."""
    rows = [
        torch.stack([weight[:, :, 0], weight[:, :, 1] + weight[:, :, 2]], dim=2),
        torch.stack([weight[:, :, 0] + weight[:, :, 1], weight[:, :, 2]], dim=2),
    ]
    return [
        torch.stack(pair, dim=3)
        for row in rows
        for pair in ((row[..., 0], row[..., 1] + row[..., 2]), (row[..., 0] + row[..., 1], row[..., 2]))
    ]


def upsample_conv(conv: nn.Conv2d, sample: torch.Tensor) -> torch.Tensor:
    """``conv(interpolate(sample, scale_factor=2, mode="nearest"))`` as four 2x2 convolutions of
    ``sample`` (see :func:`phase_kernels`)."""
    batch, _, height, width = sample.shape
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    padded = F.pad(sample, (1, 1, 1, 1), mode=mode)
    output = _empty_as(sample, (batch, conv.out_channels, 2 * height, 2 * width))
    for index, kernel in enumerate(phase_kernels(conv.weight)):
        row, col = divmod(index, 2)
        kernel = kernel.contiguous(memory_format=_layout(sample))
        part = padded[:, :, row : row + height + 1, col : col + width + 1]
        output[:, :, row::2, col::2] = F.conv2d(part, kernel, conv.bias)
    return output


def upsample_forward(self: Upsample2D, hidden_states: torch.Tensor, output_size=None, *args, **kwargs):
    """:meth:`Upsample2D.forward` with :func:`upsample_conv` (see the module docstring)."""
    conv = plain_conv(self.conv if self.name == "conv" else self.Conv2d_0) if self.use_conv else None
    size = hidden_states.shape[-2:]
    usable = (
        _inference(self, hidden_states)
        and not args
        and not kwargs
        and conv is not None
        and self.norm is None
        and self.interpolate
        and not self.use_conv_transpose
        and hidden_states.dtype in (torch.float32, torch.float64)  # summed taps in bf16 would round
        and (output_size is None or tuple(output_size) == (2 * size[0], 2 * size[1]))
    )
    if not usable:
        return Upsample2D.forward(self, hidden_states, output_size, *args, **kwargs)
    return upsample_conv(conv, hidden_states)


def use_fast_inference(*models: nn.Module) -> None:
    """Give every :class:`ResnetBlock2D` and :class:`Upsample2D` of ``models`` the forward passes
    above (each instance its own; a model built again gets diffusers' until this runs on it)."""
    for model in models:
        for module in model.modules():
            if type(module) is ResnetBlock2D:
                module.forward = types.MethodType(resnet_forward, module)
            elif type(module) is Upsample2D:
                module.forward = types.MethodType(upsample_forward, module)
