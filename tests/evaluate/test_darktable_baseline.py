"""darktable-cli as a classical baseline: the packed denoiseprofile history is what the installed
darktable reads, and it denoises a real mosaic DNG."""

from __future__ import annotations

import numpy as np

from rddm.color import camera_to_srgb_matrix, srgb_encode
from rddm.evaluate.darktable import (
    DARKTABLE_STRENGTHS,
    DENOISEPROFILE_SIZE,
    DENOISEPROFILE_VERSION,
    check_module_layout,
    denoiseprofile_params,
    match_colours,
    render_level,
)
from rddm.evaluate.run import _pair
from rddm.synth.noise import reference_noise
from tests.conftest import require_darktable


def test_params_match_the_installed_module():
    require_darktable()
    layout = check_module_layout()
    if layout is not None:  # read from the plugin's introspection where it can be loaded
        assert layout == (DENOISEPROFILE_VERSION, DENOISEPROFILE_SIZE)
    params = denoiseprofile_params((1e-4,) * 3, (1e-7,) * 3, 2.0)
    assert len(params) == DENOISEPROFILE_SIZE
    assert np.frombuffer(params[8:12], "<f4")[0] == 2.0


def test_darktable_denoises_a_noisy_mosaic(tmp_path):
    darktable_cli = require_darktable()
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    image = np.clip(np.stack([0.3 + 0.4 * xx, 0.3 + 0.4 * yy, 0.5 + 0.2 * np.sin(6 * xx)], -1), 0, 1)
    pair = _pair(image.astype(np.float32), "high", "GRBG", 0, (0, 3, 2))
    target = np.clip(pair.hq @ camera_to_srgb_matrix(pair.xyz_to_cam).T, 0, 1)
    errors = {}
    for name, strength, rendered in render_level(
        {"m": pair}, reference_noise(12800), darktable_cli, tmp_path
    ):
        assert name == "m" and rendered.shape == (96, 96, 3) and np.isfinite(rendered).all()
        matched = srgb_encode(match_colours(rendered, target))[8:-8, 8:-8]
        errors[strength] = float(np.mean((matched - srgb_encode(target)[8:-8, 8:-8]) ** 2))
    assert list(errors) == list(DARKTABLE_STRENGTHS)
    # Off, the high noise stays; the profiled denoise removes much of it on this smooth image.
    assert errors[4.0] < 0.5 * errors[0.0]
