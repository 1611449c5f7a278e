"""Training configuration: one YAML file per model (``rddm train --config FILE``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from rddm.errors import RddmError
from rddm.raw.cfa import check_pattern

# The terms rddm.train.losses.restoration_loss weighs.
LOSS_TERMS = ("linear_l1", "srgb_l1", "gradient_l1", "haarpsi")

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclasses.dataclass
class Stage:
    """One training stage: which parts learn, for how many steps, with which loss weights."""

    name: str
    steps: int
    train: list[str]  # any of "rvae_encoder", "rvae_decoder", "unet", "adapters"
    learning_rate: float = 1e-3
    fidelity_weight: float = 1.0  # loss on the strength-0 end (RVAE decode of z_lq)
    restored_weight: float = 1.0  # loss on the strength-1 end (one diffusion step)


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; saved next to its checkpoints."""

    name: str
    # {"rvae": {...}, "unet": {...}, "prompt_tokens": int, "prompt_dim": int, "lora_rank": int, ...};
    # "canonical_pattern" (with "adapters": false): trained on that Bayer pattern only, and every
    # other pattern is shifted onto it at restore time (canonicalisation by shifting).
    model: dict
    stages: list[Stage]
    data_dir: str = "../shared/data/train-srgb"
    validation_images: int = 8  # the last N images of data_dir (sorted) are held out for validation
    validation_iso: int | None = 3200  # reference noise of the validation crops (None: noise-free)
    crop: int = 128
    batch_size: int = 8
    source_downscale_min_side: int = 900  # images this large are area-downscaled by 2 first
    noise: dict = dataclasses.field(default_factory=lambda: {"none": 0.1, "range": 0.45, "profile": 0.45})
    exposure_range: tuple[float, float] = (0.5, 1.1)
    defocus_probability: float = 0.05
    downsample_probability: float = 0.05
    # Share of crops whose chroma is scaled by a factor drawn from saturation_range (data.saturate).
    saturation_probability: float = 0.0
    saturation_range: tuple[float, float] = (1.0, 1.6)
    saturation_mode: str = "clip"  # or "compress": towards the gamut edge without clipping
    # Share of crops mosaicked as the usual demosaicking protocol's camera (linear sRGB itself,
    # neutral white balance: SynthConfig.srgb_camera) instead of a real camera's colour space, whose
    # overlapping sensitivities never leave a channel near zero the way saturated sRGB colours do.
    srgb_camera_probability: float = 0.0
    skip_dropout: float = 0.0  # share of samples trained without the RVAE skip (see loop.RDDMTrainer)
    loss: dict = dataclasses.field(
        default_factory=lambda: {"linear_l1": 1.0, "srgb_l1": 1.0, "gradient_l1": 0.5}
    )
    # The restored end's weights (strength 1, the UNet's step) when they differ from ``loss``'s, which
    # then weigh the fidelity end (strength 0) alone: for example a perceptual term on the restored
    # end only, so that the strength goes from faithful to perceptual.
    restored_loss: dict | None = None
    weight_decay: float = 1e-4
    gradient_clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    validate_every: int = 200
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    threads: int = 0  # torch CPU threads, 0 = torch's default
    data_workers: int = 0  # processes synthesizing batches ahead of the model (0: in the loop itself)
    # A run stops with an error when the loss is not finite or the largest magnitude of the latent or
    # of the decoder's last features exceeds this: a norm-free model that diverges drives those
    # features up until SiLU zeroes them all, and then trains on as a bilinear demosaic without any
    # other sign (seen on a GPU: ~1e6; a healthy rddm-tiny stays under 10).
    max_activation: float = 1e4

    def __post_init__(self) -> None:
        if self.saturation_mode not in ("clip", "compress"):
            raise ValueError(f"saturation_mode must be clip or compress, not {self.saturation_mode!r}")
        if not 0.0 <= self.srgb_camera_probability <= 1.0:
            raise ValueError(f"srgb_camera_probability must be in [0, 1], not {self.srgb_camera_probability}")
        for weights in (self.loss, self.restored_loss or {}):
            unknown = sorted(set(weights) - set(LOSS_TERMS))
            if unknown:
                raise ValueError(f"unknown loss terms {unknown} (known: {', '.join(LOSS_TERMS)})")
        canonical = self.model.get("canonical_pattern")
        if canonical is not None:
            check_pattern(canonical)
            if self.model.get("adapters", True) and not self.model.get("from_folder"):
                raise ValueError("model.canonical_pattern needs model.adapters: false (one shared model)")

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a YAML training config; a bare name finds a shipped config (``rddm-tiny``)."""
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / f"{path.name}.yaml").exists():
        path = CONFIG_DIR / f"{path.name}.yaml"
    if not path.is_file():
        raise RddmError(f"{path}: no such training config")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["stages"] = [Stage(**stage) for stage in raw["stages"]]
        return TrainConfig(**raw)
    except (yaml.YAMLError, TypeError, KeyError, ValueError) as error:
        raise RddmError(f"{path}: invalid training config ({error})") from None
