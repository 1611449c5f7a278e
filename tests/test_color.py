"""The sRGB transfer curves (computed in place) and the engine's preview PNG encoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rddm.color import srgb_decode, srgb_encode, to_uint
from rddm.server.app import encode_png


def textbook_encode(linear):
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055).astype(
        np.float32
    )


def textbook_decode(encoded):
    encoded = np.clip(encoded, 0.0, 1.0)
    return np.where(encoded <= 0.04045, encoded / 12.92, np.power((encoded + 0.055) / 1.055, 2.4)).astype(
        np.float32
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.3, 0.01])
def test_transfer_curves_match_the_formula_to_the_bit(dtype, scale):
    values = (np.random.default_rng(3).random((64, 48, 3)) * scale - 0.1 * scale).astype(dtype)
    untouched = values.copy()
    for curve, formula in ((srgb_encode, textbook_encode), (srgb_decode, textbook_decode)):
        result = curve(values)
        assert result.dtype == np.float32 and result.shape == values.shape
        np.testing.assert_array_equal(result, formula(values))
        np.testing.assert_array_equal(values, untouched)  # the input is never written


SCALARS_AND_LISTS = [0.5, 0.002, [0.0, 1.0, 2.0], np.float32(0.25), np.array(0.3), np.arange(3)]


@pytest.mark.parametrize("value", SCALARS_AND_LISTS)
def test_transfer_curves_take_scalars_lists_and_integers(value):
    for curve, formula in ((srgb_encode, textbook_encode), (srgb_decode, textbook_decode)):
        result = curve(value)
        assert result.dtype == np.float32
        np.testing.assert_array_equal(result, formula(value))


def test_curves_invert_each_other():
    ramp = np.linspace(0.0, 1.0, 4097, dtype=np.float32)
    np.testing.assert_allclose(srgb_decode(srgb_encode(ramp)), ramp, atol=2e-6)


def test_preview_png_is_lossless_8_bit_rgb():
    srgb = np.random.default_rng(5).random((37, 53, 3)).astype(np.float32)
    payload = encode_png(srgb)
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded[..., ::-1], to_uint(srgb, 8))
