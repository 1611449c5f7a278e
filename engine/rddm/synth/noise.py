"""Heteroscedastic Poisson-Gaussian sensor noise, from ranges or from real camera profiles.

Noise is defined on the normalised RAW mosaic (black = 0, white = 1), per colour channel:
``variance(x) = shot * x + read``. darktable's ``noiseprofiles.json`` gives exactly these two
numbers (its ``a`` and ``b``, for R, G, B) per camera and ISO.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path

import numpy as np

from rddm.raw.cfa import color_index_map

# Where darktable installs its noise profiles (Linux packages, /usr/local builds, macOS app, Windows).
_PROFILE_LOCATIONS = (
    "/usr/share/darktable/noiseprofiles.json",
    "/usr/local/share/darktable/noiseprofiles.json",
    "/opt/homebrew/share/darktable/noiseprofiles.json",
    "/Applications/darktable.app/Contents/Resources/share/darktable/noiseprofiles.json",
    "C:/Program Files/darktable/share/darktable/noiseprofiles.json",
)

# Median (shot, read) over every camera profile within 1/6 stop of each ISO in darktable 4.2.1's
# noiseprofiles.json (6854 complete profiles, 364 cameras), per R, G, B. They define rddm's named noise
# levels so evaluation is the same with or without darktable installed
# (tests/synth/test_noise.py recomputes them from the file when it is present).
REFERENCE_ISO_NOISE: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    100: ((6.869e-06, 3.359e-06, 6.313e-06), (6.077e-09, 3.664e-09, 7.314e-09)),
    800: ((4.066e-05, 1.918e-05, 3.570e-05), (7.389e-08, 4.584e-08, 8.787e-08)),
    3200: ((1.471e-04, 7.194e-05, 1.386e-04), (4.373e-07, 3.176e-07, 4.942e-07)),
    12800: ((5.179e-04, 2.502e-04, 4.525e-04), (1.958e-06, 1.791e-06, 2.237e-06)),
}
NOISE_LEVELS: dict[str, int | None] = {"none": None, "low": 800, "mid": 3200, "high": 12800}


@dataclasses.dataclass(frozen=True)
class NoiseParams:
    """Per-channel (R, G, B) Poisson-Gaussian parameters on the normalised mosaic."""

    shot: tuple[float, float, float]
    read: tuple[float, float, float]
    source: str = "range"  # "range", "reference", or "<maker> <model>" for a camera profile
    iso: float | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def find_noise_profiles() -> Path | None:
    """darktable's noiseprofiles.json (``RDDM_NOISEPROFILES`` overrides), or None."""
    candidates = [os.environ.get("RDDM_NOISEPROFILES", "")] + list(_PROFILE_LOCATIONS)
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@functools.lru_cache(maxsize=4)
def load_noise_profiles(path: str | None = None) -> tuple[NoiseParams, ...]:
    """Every camera/ISO profile of a darktable noiseprofiles.json ((), when none is found)."""
    found = Path(path) if path else find_noise_profiles()
    if found is None:
        return ()
    with open(found, encoding="utf-8") as handle:
        document = json.load(handle)
    profiles = []
    for maker in document.get("noiseprofiles", []):
        for model in maker.get("models", []):
            for profile in model.get("profiles", []):
                shot, read = profile.get("a"), profile.get("b")
                # Some entries are incomplete (a zero channel): they are not a usable profile.
                if not (shot and read and len(shot) == 3 and len(read) == 3 and min(shot) > 0):
                    continue
                profiles.append(
                    NoiseParams(
                        shot=tuple(float(v) for v in shot),
                        read=tuple(max(float(v), 0.0) for v in read),
                        source=f"{maker['maker']} {model['model']}",
                        iso=float(profile["iso"]),
                    )
                )
    return tuple(profiles)


def reference_noise(iso: int) -> NoiseParams:
    """The named reference level for ISO 100, 800, 3200 or 12800 (typical camera, see above)."""
    if iso not in REFERENCE_ISO_NOISE:
        raise ValueError(f"no reference noise for ISO {iso}: choose one of {list(REFERENCE_ISO_NOISE)}")
    shot, read = REFERENCE_ISO_NOISE[iso]
    return NoiseParams(shot=shot, read=read, source="reference", iso=float(iso))


def sample_profile_noise(
    rng: np.random.Generator, iso: float, profiles: tuple[NoiseParams, ...] | None = None
) -> NoiseParams:
    """A random real camera's profile within 1/3 stop of ``iso``; the reference level otherwise."""
    profiles = load_noise_profiles() if profiles is None else profiles
    near = [p for p in profiles if abs(np.log2(p.iso / iso)) <= 1 / 3]
    if near:
        return near[rng.integers(len(near))]
    nearest = min(REFERENCE_ISO_NOISE, key=lambda ref: abs(np.log2(ref / iso)))
    return reference_noise(nearest)


def sample_range_noise(
    rng: np.random.Generator, shot_range: tuple[float, float] = (1e-4, 0.012)
) -> NoiseParams:
    """Brooks et al. (2019): log-uniform shot noise, read noise tied to it with jitter."""
    log_shot = rng.uniform(np.log(shot_range[0]), np.log(shot_range[1]))
    log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
    shot, read = float(np.exp(log_shot)), float(np.exp(log_read))
    return NoiseParams(shot=(shot,) * 3, read=(read,) * 3, source="range")


def add_noise(cfa: np.ndarray, cfa_pattern: str, noise: NoiseParams, rng: np.random.Generator) -> np.ndarray:
    """Add Poisson (shot) plus Gaussian (read) noise to a clean ``(H, W)`` mosaic in [0, 1].

    Returns float32, clipped to [0, 1] like a black-subtracted, white-scaled real RAW.
    """
    height, width = cfa.shape
    channel = np.tile(color_index_map(cfa_pattern), ((height + 1) // 2, (width + 1) // 2))
    channel = channel[:height, :width]
    shot = np.asarray(noise.shot, dtype=np.float64)[channel]
    read = np.asarray(noise.read, dtype=np.float64)[channel]
    if np.any(shot <= 0):
        raise ValueError(f"shot noise must be positive, got {noise.shot}")
    signal = np.clip(cfa.astype(np.float64), 0.0, None)
    photons = rng.poisson(signal / shot) * shot
    noisy = photons + rng.normal(0.0, 1.0, size=cfa.shape) * np.sqrt(read)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)
