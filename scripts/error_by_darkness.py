"""Where a model's error sits against LibRaw DHT's on a few benchmark images (noise-free, RGGB):
per-channel PSNR and mean signed error (8-bit levels) in the neutral sRGB rendering, the error
binned by the weakest linear channel of the target (saturated colours have one near zero, where
the sRGB curve magnifies every linear error), and its share and mean at edges (the target's Sobel
gradient, grey level, dilated by 2 px, above 0.3) against flat parts.

    python scripts/error_by_darkness.py IMAGE... [--model rddm-tiny]

IMAGE is a path to an sRGB benchmark image; each is centre-cropped to 256 px as `rddm eval` does.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from rddm.color import render_srgb
from rddm.evaluate.baselines import libraw_demosaic
from rddm.evaluate.run import _centre_crop, _pair, psnr
from rddm.model.registry import load_pipeline
from rddm.raw import RawImage
from rddm.synth.dataset import read_srgb

BORDER = 8
BINS = ((0.0, 0.005), (0.005, 0.02), (0.02, 0.08), (0.08, 1.01))


def edges(reference: np.ndarray) -> np.ndarray:
    """Where the rendered target has an edge (see the module docstring), border removed."""
    grey = reference.mean(-1).astype(np.float32)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return (cv2.dilate(gradient, np.ones((5, 5), np.uint8)) > 0.3)[BORDER:-BORDER, BORDER:-BORDER]


def describe(name: str, output: np.ndarray, reference: np.ndarray, weakest: np.ndarray) -> str:
    error = (output - reference)[BORDER:-BORDER, BORDER:-BORDER]
    channels = [10 * np.log10(1 / np.mean(error[..., c] ** 2)) for c in range(3)]
    bias = [255 * float(error[..., c].mean()) for c in range(3)]
    squared = (error**2).mean(-1)
    bins = []
    for low, high in BINS:
        inside = (weakest >= low) & (weakest < high)
        mse = squared[inside].mean() if inside.any() else 0.0
        bins.append(f"[{low:g},{high:g}) {inside.mean():.2f} of pixels, MSE {mse:.1e}")
    edge = edges(reference)
    bins.append(
        f"edges {edge.mean():.2f} of pixels, MSE {squared[edge].mean():.1e} "
        f"({squared[edge].sum() / squared.sum():.2f} of the error), flat MSE {squared[~edge].mean():.1e}"
    )
    return (
        f"  {name}: PSNR {psnr(output, reference):.2f} (R/G/B {' / '.join(f'{c:.2f}' for c in channels)}), "
        f"mean error R/G/B {' / '.join(f'{b:+.2f}' for b in bias)} levels\n    " + "; ".join(bins)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", default="rddm-tiny")
    args = parser.parse_args()
    pipeline = load_pipeline(args.model).to("cpu")
    for path in args.images:
        pair = _pair(_centre_crop(read_srgb(path), 256), "none", "RGGB", 0, (0, 0, 0))
        reference = render_srgb(pair.hq, pair.xyz_to_cam)
        raw = RawImage(
            cfa=pair.lq_cfa, cfa_pattern="RGGB", wb_gains=pair.wb_gains, xyz_to_cam=pair.xyz_to_cam
        )
        model = render_srgb(pipeline(raw, 0.5, tile_size=256, tile_overlap=32), pair.xyz_to_cam)
        dht = libraw_demosaic(pair.lq_cfa, "RGGB", pair.wb_gains, pair.xyz_to_cam, "dht")
        weakest = pair.hq.min(-1)[BORDER:-BORDER, BORDER:-BORDER]
        print(path)
        print(describe(args.model, model, reference, weakest))
        print(describe("LibRaw DHT", render_srgb(dht, pair.xyz_to_cam), reference, weakest))


if __name__ == "__main__":
    main()
