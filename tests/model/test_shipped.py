"""The shipped default model: it loads, restores a real RAW, and tiles without seams."""

from __future__ import annotations

import numpy as np
import pytest

from rddm.model.registry import DEFAULT_MODEL, MODELS_DIR, load_pipeline
from rddm.raw import read_raw
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def shipped():
    if not (MODELS_DIR / DEFAULT_MODEL).is_dir():
        pytest.skip("rddm-tiny's trained weights are not in this checkout")
    return load_pipeline(DEFAULT_MODEL)


def test_shipped_model_is_trained_and_complete(shipped):
    assert shipped.info["trained"] is True and shipped.info["steps"] > 0
    assert shipped.adapters == ("rggb", "bggr", "grbg", "gbrg")
    assert (MODELS_DIR / DEFAULT_MODEL / "README.md").is_file()


@pytest.mark.parametrize(
    "name", ["raw/native/canon_eos_d30_imagemeta.CRW", "raw/gopro_crops/gopro_hero7_GOPR9231_crop_BGGR.dng"]
)
def test_restores_a_real_raw_without_nans(shipped, name):
    raw = read_raw(shared_data(name))
    roi = (raw.width // 2 - 128, raw.height // 2 - 128, 256, 256)
    out = shipped(raw, 0.5, roi=roi)
    assert out.shape == (256, 256, 3) and np.isfinite(out).all()
    # A restoration, not a blank: it follows the picture (correlates with the RAW's green).
    green = raw.cfa[roi[1] : roi[1] + 256, roi[0] : roi[0] + 256]
    assert np.corrcoef(out[..., 1].ravel(), green.ravel())[0, 1] > 0.8


def test_tiles_match_the_whole_image(shipped):
    raw = read_raw(shared_data("raw/plain/isp_mushfiqulalam_nikon/DSC_1339_768x512_rggb.dng"))
    whole = shipped(raw, 0.5, tile_size=384, tile_overlap=0)  # 768x512 is one 256x384 packed tile
    tiled = shipped(raw, 0.5, tile_size=128, tile_overlap=64)
    assert np.abs(tiled - whole).max() < TILE_TOLERANCE


# The bound. Measured on the shipped weights (DSC_1339, strength 0.5): tiles of 128 packed
# pixels overlapping by 64 differ from the whole image by at most 8.6e-4 (mean 7e-7); by 32 (the
# CLI's default overlap), at most 1.2e-3 (mean 2e-7).
TILE_TOLERANCE = 1e-3
