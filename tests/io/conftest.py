"""Shared inputs of the writer tests: a camera's colour facts and its shooting metadata."""

from __future__ import annotations

import numpy as np
import pytest

from rddm.raw import ExifInfo


@pytest.fixture
def xyz_to_cam() -> np.ndarray:
    """A real camera's D65 ColorMatrix (Canon EOS 5D Mark II): far from sRGB, so losing it shows."""
    return np.array([4716, 603, -830, -7798, 15474, 2480, -1496, 1937, 6651]).reshape(3, 3) / 1e4


@pytest.fixture
def wb_gains() -> tuple[float, float, float]:
    """As-shot multipliers (R, G, B), green = 1."""
    return (2.0, 1.0, 1.5)


@pytest.fixture
def exif() -> ExifInfo:
    return ExifInfo(
        make="Rddmtest",  # a make LibRaw does not know: its colour matrix must come from the DNG
        model="Synthetic One",
        datetime="2024:05:06 07:08:09",
        iso=800.0,
        exposure_time=1 / 250,
        f_number=2.8,
        focal_length=50.0,
        lens="Test Lens 50mm F2.8",
    )
