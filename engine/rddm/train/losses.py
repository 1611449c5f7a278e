"""Losses on white-balanced linear camera RGB and on its neutral sRGB rendering (differentiable)."""

from __future__ import annotations

import piq
import torch
import torch.nn.functional as F


def render_srgb(balanced: torch.Tensor, to_srgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` white-balanced camera RGB and ``(B, 3, 3)`` camera->sRGB matrices ->
    encoded sRGB in [0, 1] (the neutral rendering of ``rddm.color``, in torch)."""
    linear = torch.einsum("bij,bjhw->bihw", to_srgb, balanced).clamp(0.0, 1.0)
    curve = 1.055 * linear.clamp_min(1e-6).pow(1 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, 12.92 * linear, curve)


def gradient_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical differences (edges and fine texture)."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(prediction), dx(target)) + F.l1_loss(dy(prediction), dy(target))


def haarpsi_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - HaarPSI of two sRGB batches, the mean over images. HaarPSI is undefined for a pair that is
    black in both (its weights sum to zero and piq returns infinity, which made a training run's loss
    -inf): such a pair counts as a perfect match and is kept out of piq, so no gradient meets the
    infinity either."""
    prediction, target = prediction.clamp(0, 1), target.clamp(0, 1)
    defined = (prediction.amax(dim=(1, 2, 3)) > 0) | (target.amax(dim=(1, 2, 3)) > 0)
    if not bool(defined.any()):
        return prediction.sum() * 0.0
    scores = piq.haarpsi(prediction[defined], target[defined], data_range=1.0, reduction="none")
    return (1.0 - scores).sum() / prediction.shape[0]


def restoration_loss(prediction, target, to_srgb, weights: dict) -> tuple[torch.Tensor, dict]:
    """Weighted sum of ``linear_l1``, ``srgb_l1``, ``gradient_l1`` (on sRGB) and, when weighted,
    ``haarpsi`` (1 - HaarPSI, a weight-free perceptual similarity that runs offline); returns the
    parts too."""
    rendered, rendered_target = render_srgb(prediction, to_srgb), render_srgb(target, to_srgb)
    parts = {
        "linear_l1": F.l1_loss(prediction, target),
        "srgb_l1": F.l1_loss(rendered, rendered_target),
        "gradient_l1": gradient_l1(rendered, rendered_target),
    }
    if weights.get("haarpsi", 0.0) > 0:
        parts["haarpsi"] = haarpsi_loss(rendered, rendered_target)
    total = sum(weights.get(name, 0.0) * value for name, value in parts.items())
    return total, {name: float(value.detach()) for name, value in parts.items()}


def psnr_srgb(prediction, target, to_srgb, border: int = 8) -> torch.Tensor:
    """Per-image PSNR (dB) of the neutral renderings, ``border`` pixels removed on each side."""
    rendered = render_srgb(prediction.clamp(0, 1), to_srgb)[..., border:-border, border:-border]
    reference = render_srgb(target, to_srgb)[..., border:-border, border:-border]
    mse = ((rendered - reference) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)
