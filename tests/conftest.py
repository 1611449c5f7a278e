"""Shared fixtures: the project's shared data (skipped cleanly when absent) and synthetic images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a message when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the project's shared data is not on this machine)")
    return path


@pytest.fixture(scope="session")
def raw_info() -> list[dict]:
    """What ../shared/data/raw/raw_info.json records for each real RAW."""
    return json.loads(shared_data("raw", "raw_info.json").read_text())


@pytest.fixture
def gradient_srgb() -> np.ndarray:
    """A smooth, colourful (64, 96, 3) sRGB image in [0, 1] with no clipped values."""
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    return np.stack(
        [0.2 + 0.6 * xx / 95, 0.2 + 0.6 * yy / 63, 0.5 + 0.3 * np.sin(xx / 9) * np.cos(yy / 7)], -1
    ).astype(np.float32)


def require_darktable() -> str:
    """darktable-cli's path, or skip (make test installs darktable when run as root)."""
    path = shutil.which("darktable-cli")
    if path is None:
        pytest.skip("darktable-cli is not installed (make test installs it as root)")
    return path
