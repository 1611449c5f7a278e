"""Poisson-Gaussian noise: statistics, real camera profiles and the reference ISO levels."""

from __future__ import annotations

import numpy as np
import pytest

from rddm.synth.noise import (
    REFERENCE_ISO_NOISE,
    NoiseParams,
    add_noise,
    find_noise_profiles,
    load_noise_profiles,
    reference_noise,
    sample_profile_noise,
    sample_range_noise,
)


@pytest.mark.parametrize("level", [0.05, 0.3])
def test_variance_is_shot_times_signal_plus_read(level):
    noise = NoiseParams(shot=(4e-3, 1e-3, 2e-3), read=(1e-5, 4e-5, 2e-5))
    clean = np.full((400, 400), level, dtype=np.float32)
    noisy = add_noise(clean, "RGGB", noise, np.random.default_rng(0))
    planes = {"R": noisy[0::2, 0::2], "G": noisy[0::2, 1::2], "B": noisy[1::2, 1::2]}
    for channel, plane in zip("RGB", range(3), strict=True):
        expected = noise.shot[plane] * level + noise.read[plane]
        assert planes[channel].var() == pytest.approx(expected, rel=0.08)
        assert planes[channel].mean() == pytest.approx(level, abs=3e-3)


def test_noise_is_clipped_like_a_raw_and_deterministic():
    noise = sample_range_noise(np.random.default_rng(1))
    clean = np.random.default_rng(2).uniform(size=(32, 32)).astype(np.float32)
    first = add_noise(clean, "GBRG", noise, np.random.default_rng(3))
    again = add_noise(clean, "GBRG", noise, np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.float32 and first.min() >= 0.0 and first.max() <= 1.0


def test_range_noise_follows_brooks():
    samples = [sample_range_noise(np.random.default_rng(s)) for s in range(200)]
    shots = np.array([s.shot[0] for s in samples])
    assert shots.min() >= 1e-4 and shots.max() <= 0.012
    reads = np.array([s.read[0] for s in samples])
    residual = np.log(reads) - (2.18 * np.log(shots) + 1.20)
    assert abs(residual.mean()) < 0.06 and residual.std() == pytest.approx(0.26, rel=0.2)


def test_reference_levels_grow_with_iso():
    shots = [reference_noise(iso).shot[1] for iso in (100, 800, 3200, 12800)]
    assert shots == sorted(shots)
    with pytest.raises(ValueError, match="no reference noise"):
        reference_noise(640)


def _profiles():
    path = find_noise_profiles()
    if path is None:
        pytest.skip("darktable's noiseprofiles.json is absent (make test installs darktable as root)")
    return load_noise_profiles(str(path))


def test_reference_levels_are_the_median_of_darktables_profiles():
    profiles = _profiles()
    for iso, (shot, read) in REFERENCE_ISO_NOISE.items():
        near = [p for p in profiles if abs(np.log2(p.iso / iso)) <= 1 / 6]
        np.testing.assert_allclose(np.median([p.shot for p in near], axis=0), shot, rtol=1e-3)
        np.testing.assert_allclose(np.median([p.read for p in near], axis=0), read, rtol=1e-3)


def test_profile_noise_comes_from_a_real_camera_near_the_iso():
    profiles = _profiles()
    assert len(profiles) > 1000
    chosen = sample_profile_noise(np.random.default_rng(0), 1600, profiles)
    assert chosen.source not in ("range", "reference")
    assert abs(np.log2(chosen.iso / 1600)) <= 1 / 3
    assert chosen in profiles


def test_profile_noise_without_profiles_falls_back_to_reference():
    chosen = sample_profile_noise(np.random.default_rng(0), 3000, profiles=())
    assert chosen == reference_noise(3200)
