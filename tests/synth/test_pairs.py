"""Pair synthesis: the HQ definition, unprocessing that inverts exactly, determinism, highlights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rddm.color import render_srgb
from rddm.raw.cfa import CFA_PATTERNS, mosaic_rgb
from rddm.synth import SynthConfig, pair_rng, synthesize_pair
from rddm.synth.dataset import read_srgb
from rddm.synth.unprocess import inverse_tone, tone, unbalance
from tests.conftest import shared_data


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


CLEAN = SynthConfig(noise="none", tone_curve=False)


@pytest.mark.parametrize("name", ["kodim03.png", "kodim19.png", "kodim23.png"])
def test_neutral_rendering_of_clean_pair_reproduces_the_photo(name):
    source = read_srgb(shared_data("srgb-bench", "kodak24", name))
    pair = synthesize_pair(source, CLEAN, pair_rng(7))
    assert psnr(render_srgb(pair.hq, pair.xyz_to_cam), source) > 45.0


def test_tone_curve_is_inverted_exactly(gradient_srgb):
    pair = synthesize_pair(gradient_srgb, dataclasses.replace(CLEAN, tone_curve=True), pair_rng(3))
    assert psnr(tone(render_srgb(pair.hq, pair.xyz_to_cam)), gradient_srgb) > 45.0
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(tone(inverse_tone(x)), x, atol=1e-5)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_clean_lq_is_the_mosaic_of_the_unbalanced_target(pattern, gradient_srgb):
    pair = synthesize_pair(gradient_srgb, CLEAN, pair_rng(5), cfa_pattern=pattern)
    assert pair.cfa_pattern == pattern
    assert pair.lq_cfa.shape == gradient_srgb.shape[:2] and pair.hq.shape == gradient_srgb.shape
    expected = mosaic_rgb(pair.hq / np.array(pair.wb_gains, dtype=np.float32), pattern)
    np.testing.assert_allclose(pair.lq_cfa, expected, atol=1e-6)


def test_gains_and_matrices_are_plausible(gradient_srgb):
    pair = synthesize_pair(gradient_srgb, CLEAN, pair_rng(11))
    red, green, blue = pair.wb_gains
    assert green == 1.0 and 1.9 <= red <= 2.4 and 1.5 <= blue <= 1.9
    assert pair.hq.dtype == np.float32 and 0.0 <= pair.hq.min() and pair.hq.max() <= 1.0


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_an_srgb_camera_mosaics_linear_srgb_itself(pattern):
    """The usual demosaicking protocol's mosaic (``srgb_camera``): linear sRGB sampled through the
    pattern, neutral white balance, every colour kept (no real camera's gamut clips it)."""
    from rddm.color import srgb_decode

    source = read_srgb(shared_data("srgb-bench", "mcmaster18", "1.tif"))[:64, :64]
    pair = synthesize_pair(source, dataclasses.replace(CLEAN, srgb_camera=True), pair_rng(2), pattern)
    assert pair.wb_gains == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(pair.hq, srgb_decode(source), atol=1e-5)
    np.testing.assert_allclose(pair.lq_cfa, mosaic_rgb(pair.hq, pattern), atol=1e-6)
    assert psnr(render_srgb(pair.hq, pair.xyz_to_cam), source) > 50.0
    camera = synthesize_pair(source, CLEAN, pair_rng(2), pattern)  # a real camera's space differs
    assert camera.wb_gains != pair.wb_gains and np.abs(camera.lq_cfa - pair.lq_cfa).max() > 0.05


def test_clipped_white_stays_saturated_in_every_channel():
    white = np.ones((8, 8, 3), dtype=np.float32)
    pair = synthesize_pair(white, CLEAN, pair_rng(0), cfa_pattern="RGGB")
    np.testing.assert_allclose(pair.lq_cfa, 1.0, atol=1e-6)
    np.testing.assert_allclose(pair.hq, 1.0, atol=1e-6)
    # A mid grey is divided by the gains as usual.
    grey = unbalance(np.full((1, 1, 3), 0.2, np.float32), (2.0, 1.0, 1.6))
    np.testing.assert_allclose(grey[0, 0], [0.1, 0.2, 0.125], rtol=1e-5)


def test_same_seed_same_pair_other_seed_other_pair(gradient_srgb):
    config = SynthConfig(
        noise="profile", defocus_probability=0.5, motion_probability=0.5, downsample_probability=0.5
    )
    first = synthesize_pair(gradient_srgb, config, pair_rng(42, 1))
    again = synthesize_pair(gradient_srgb, config, pair_rng(42, 1))
    other = synthesize_pair(gradient_srgb, config, pair_rng(43, 1))
    np.testing.assert_array_equal(first.lq_cfa, again.lq_cfa)
    np.testing.assert_array_equal(first.hq, again.hq)
    assert first.metadata() == again.metadata()
    assert not np.array_equal(first.lq_cfa, other.lq_cfa)


def test_degradations_blur_the_lq_but_not_the_target(gradient_srgb):
    rng_image = np.random.default_rng(0).uniform(0.2, 0.8, size=(64, 64, 3)).astype(np.float32)
    config = dataclasses.replace(CLEAN, defocus_probability=1.0, downsample_probability=1.0)
    pair = synthesize_pair(rng_image, config, pair_rng(9), cfa_pattern="RGGB")
    assert set(pair.degradations) == {"defocus_radius", "downsample_factor"}
    sharp = mosaic_rgb(pair.hq / np.array(pair.wb_gains, dtype=np.float32), "RGGB")
    # Blur removes pixel-to-pixel variation within a colour plane.
    assert (
        np.abs(np.diff(pair.lq_cfa[::2, ::2], axis=1)).mean()
        < 0.6 * np.abs(np.diff(sharp[::2, ::2], axis=1)).mean()
    )


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="noise must be"):
        SynthConfig(noise="loud")
    with pytest.raises(ValueError, match="needs an iso"):
        SynthConfig(noise="reference")
    with pytest.raises(ValueError, match="unknown CFA pattern"):
        SynthConfig(cfa_patterns=("RGBW",))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        synthesize_pair(np.zeros((8, 8)), CLEAN, pair_rng(0))
