"""Classical pipelines on the same mosaics: LibRaw demosaicking, then a tuned sRGB denoiser."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import rawpy

from rddm.color import render_srgb
from rddm.synth.dataset import write_mosaic_dng

DEMOSAICS = {
    "ahd": rawpy.DemosaicAlgorithm.AHD,
    "aahd": rawpy.DemosaicAlgorithm.AAHD,
    "dht": rawpy.DemosaicAlgorithm.DHT,
}
# Strength grids; 0 means "no denoising" (the right choice without noise).
NLM_STRENGTHS = (0, 3, 6, 10, 15)
# BM3D's best sigma on DHT's rendering of kodim06 and McMaster 14 (256 px crops, images outside the
# README's subset) was 0.02-0.04 at ISO 800, 0.03-0.04 at 3200 and 0.04-0.06 at 12800; each value
# costs 5-15 s per 256 px crop on this CPU, so the grid is these three.
BM3D_SIGMAS = (0, 0.02, 0.04, 0.06)


def libraw_demosaic(cfa: np.ndarray, pattern: str, wb_gains, xyz_to_cam, algorithm: str) -> np.ndarray:
    """White-balanced linear camera RGB ``(H, W, 3)`` from LibRaw's ``algorithm`` on ``cfa``.

    The mosaic goes through a real CFA DNG so LibRaw sees what it sees in a camera file; its 16-bit
    linear output with as-shot WB and no brightening is our HQ convention (clip(raw * gains)).
    ``adjust_maximum_thr=0`` keeps the DNG's white level: LibRaw's default (0.75) takes the data's
    own maximum as white whenever it is over 0.75 of it, which brightened every mosaic whose noise
    reached past 0.75 by up to 4/3 (up to 7 dB lost on such pairs, in every evaluation before 2026-11-30).
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mosaic.dng"
        write_mosaic_dng(path, cfa, pattern, wb_gains, xyz_to_cam)
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(
                demosaic_algorithm=DEMOSAICS[algorithm],
                use_camera_wb=True,
                output_color=rawpy.ColorSpace.raw,
                gamma=(1, 1),
                no_auto_bright=True,
                output_bps=16,
                user_flip=0,
                highlight_mode=rawpy.HighlightMode.Clip,
                adjust_maximum_thr=0.0,
            )
    return rgb.astype(np.float32) / 65535.0


def denoise_nlm(srgb: np.ndarray, strength: float) -> np.ndarray:
    """OpenCV's non-local means on the 8-bit sRGB rendering (``strength`` = its h, in grey levels)."""
    if strength <= 0:
        return srgb
    image = np.round(np.clip(srgb, 0, 1) * 255).astype(np.uint8)
    out = cv2.fastNlMeansDenoisingColored(image, None, strength, strength, 7, 21)
    return out.astype(np.float32) / 255.0


def denoise_bm3d(srgb: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (PyPI ``bm3d``) on the sRGB rendering; ``sigma`` in [0, 1] units."""
    if sigma <= 0:
        return srgb
    import bm3d

    return np.clip(bm3d.bm3d_rgb(srgb, sigma), 0, 1).astype(np.float32)


def classical_candidates(lq, pattern, wb_gains, xyz_to_cam, algorithm: str, denoisers: tuple[str, ...]):
    """Every (denoiser, strength) rendering of one demosaic: ``{("nlm", 6): srgb, ...}``; the
    denoiser ``none`` is the demosaic alone (for noise-free mosaics)."""
    srgb = render_srgb(libraw_demosaic(lq, pattern, wb_gains, xyz_to_cam, algorithm), xyz_to_cam)
    candidates = {("none", 0): srgb} if "none" in denoisers else {}
    if "nlm" in denoisers:
        candidates |= {("nlm", s): denoise_nlm(srgb, s) for s in NLM_STRENGTHS}
    if "bm3d" in denoisers:
        candidates |= {("bm3d", s): denoise_bm3d(srgb, s) for s in BM3D_SIGMAS}
    return candidates
