"""RAW LQ/HQ training and evaluation pairs from clean sRGB photos.

The HQ target, defined once for the whole project:
    **white-balanced linear camera RGB at full resolution, float32 in [0, 1]** (``(H, W, 3)``):
    the scene as the camera's colour filters see it, multiplied by the as-shot white-balance gains
    (green = 1) and clipped at 1. :func:`rddm.color.render_srgb` renders it; the model predicts it.

The LQ input is what the sensor records of that scene: optionally blurred and down-sampled,
divided by the white-balance gains (with highlight preservation), sampled through the Bayer
pattern and given Poisson-Gaussian noise, as a normalised ``(H, W)`` mosaic in [0, 1].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rddm.color import DEFAULT_XYZ_TO_CAM
from rddm.raw.cfa import CFA_PATTERNS, check_pattern, mosaic_rgb
from rddm.synth.degrade import defocus_blur, motion_blur, resolution_loss
from rddm.synth.noise import (
    NoiseParams,
    add_noise,
    reference_noise,
    sample_profile_noise,
    sample_range_noise,
)
from rddm.synth.unprocess import (
    CAMERA_MATRICES,
    random_wb_gains,
    random_xyz_to_cam,
    srgb_to_balanced_camera,
    unbalance,
)


@dataclasses.dataclass
class SynthConfig:
    """How pairs are made. Ranges are (low, high) and drawn uniformly per pair.

    ``noise``: ``"none"``, ``"range"`` (Brooks et al.'s shot/read ranges), ``"profile"`` (a real
    camera's darktable profile at an ISO drawn from ``iso_choices``) or ``"reference"`` (the typical
    camera at exactly ``iso``, for evaluation).
    """

    cfa_patterns: tuple[str, ...] = CFA_PATTERNS
    tone_curve: bool = True
    exposure_range: tuple[float, float] = (1.0, 1.0)
    camera_matrices: tuple[str, ...] = tuple(sorted(CAMERA_MATRICES))
    noise: str = "range"
    shot_range: tuple[float, float] = (1e-4, 0.012)
    iso_choices: tuple[float, ...] = (100, 400, 800, 1600, 3200, 6400, 12800)
    iso: int | None = None
    defocus_probability: float = 0.0
    defocus_radius: tuple[float, float] = (0.5, 2.0)
    motion_probability: float = 0.0
    motion_length: tuple[float, float] = (3.0, 9.0)
    downsample_probability: float = 0.0
    downsample_factor: tuple[float, float] = (1.0, 2.0)
    # The usual demosaicking protocol's camera: the mosaic samples linear sRGB itself (sRGB's
    # primaries, neutral white balance) instead of a real camera's colour space.
    srgb_camera: bool = False

    def __post_init__(self) -> None:
        self.cfa_patterns = tuple(check_pattern(p) for p in self.cfa_patterns)
        if self.noise not in ("none", "range", "profile", "reference"):
            raise ValueError(f"noise must be none, range, profile or reference, got {self.noise!r}")
        if self.noise == "reference" and self.iso is None:
            raise ValueError("noise 'reference' needs an iso (100, 800, 3200 or 12800)")
        unknown = set(self.camera_matrices) - set(CAMERA_MATRICES)
        if unknown:
            raise ValueError(f"unknown camera matrices {sorted(unknown)}: see CAMERA_MATRICES")


@dataclasses.dataclass
class Pair:
    """One synthesized pair and everything needed to write it as a real RAW."""

    lq_cfa: np.ndarray  # (H, W) float32 in [0, 1]
    hq: np.ndarray  # (H, W, 3) float32 in [0, 1], white-balanced linear camera RGB
    cfa_pattern: str
    wb_gains: tuple[float, float, float]
    xyz_to_cam: np.ndarray  # (3, 3)
    noise: NoiseParams | None
    degradations: dict

    def metadata(self) -> dict:
        """JSON-friendly description of how the pair was made (for manifests)."""
        return {
            "cfa_pattern": self.cfa_pattern,
            "wb_gains": [round(g, 5) for g in self.wb_gains],
            "xyz_to_cam": np.round(self.xyz_to_cam, 5).tolist(),
            "noise": self.noise.as_dict() if self.noise else None,
            "degradations": self.degradations,
            "height": int(self.lq_cfa.shape[0]),
            "width": int(self.lq_cfa.shape[1]),
        }


def _sample_noise(config: SynthConfig, rng: np.random.Generator) -> NoiseParams | None:
    if config.noise == "none":
        return None
    if config.noise == "range":
        return sample_range_noise(rng, config.shot_range)
    if config.noise == "reference":
        return reference_noise(config.iso)
    iso = config.iso if config.iso is not None else rng.choice(config.iso_choices)
    return sample_profile_noise(rng, float(iso))


def _degrade(scene: np.ndarray, config: SynthConfig, rng: np.random.Generator):
    applied: dict = {}
    if rng.uniform() < config.defocus_probability:
        applied["defocus_radius"] = round(float(rng.uniform(*config.defocus_radius)), 3)
        scene = defocus_blur(scene, applied["defocus_radius"])
    if rng.uniform() < config.motion_probability:
        applied["motion_length"] = round(float(rng.uniform(*config.motion_length)), 3)
        applied["motion_angle"] = round(float(rng.uniform(0.0, 180.0)), 1)
        scene = motion_blur(scene, applied["motion_length"], applied["motion_angle"])
    if rng.uniform() < config.downsample_probability:
        applied["downsample_factor"] = round(float(rng.uniform(*config.downsample_factor)), 3)
        scene = resolution_loss(scene, applied["downsample_factor"])
    return scene, applied


def synthesize_pair(
    srgb: np.ndarray,
    config: SynthConfig,
    rng: np.random.Generator,
    cfa_pattern: str | None = None,
) -> Pair:
    """Make one (LQ mosaic, HQ target) pair from an ``(H, W, 3)`` encoded sRGB image in [0, 1].

    Deterministic for a given ``rng`` state. ``cfa_pattern`` defaults to a random one of
    ``config.cfa_patterns``.
    """
    if srgb.ndim != 3 or srgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) sRGB image, got shape {srgb.shape}")
    pattern = check_pattern(cfa_pattern or config.cfa_patterns[rng.integers(len(config.cfa_patterns))])
    if config.srgb_camera:
        xyz_to_cam, wb_gains = DEFAULT_XYZ_TO_CAM.copy(), (1.0, 1.0, 1.0)
    else:
        xyz_to_cam = random_xyz_to_cam(rng, list(config.camera_matrices))
        wb_gains = random_wb_gains(rng)
    exposure = float(rng.uniform(*config.exposure_range))
    balanced = srgb_to_balanced_camera(srgb, xyz_to_cam, tone_curve=config.tone_curve)
    hq = np.clip(balanced * exposure, 0.0, 1.0).astype(np.float32)
    scene, degradations = _degrade(hq, config, rng)
    clean_cfa = mosaic_rgb(unbalance(scene, wb_gains), pattern)
    noise = _sample_noise(config, rng)
    lq = clean_cfa if noise is None else add_noise(clean_cfa, pattern, noise, rng)
    if exposure != 1.0:
        degradations["exposure"] = round(exposure, 4)
    return Pair(
        lq_cfa=lq.astype(np.float32),
        hq=hq,
        cfa_pattern=pattern,
        wb_gains=wb_gains,
        xyz_to_cam=xyz_to_cam,
        noise=noise,
        degradations=degradations,
    )


def pair_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent, reproducible generator for one pair (seed plus e.g. image and pattern index)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))
