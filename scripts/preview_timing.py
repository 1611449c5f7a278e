"""Where a strength change on a cached preview region spends its time outside HTTP: the blend of
the two ends, the neutral rendering (its transfer curve alone too) and the PNG the engine sends,
each against the PNG settings the engine used before (level 1, RLE, SUB filter).

    python scripts/preview_timing.py [--size 512] [--repeats 30]

The ends are noise (the worst case for PNG compression), so the figures are an upper bound for
photographs of the same size.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from rddm.color import DEFAULT_XYZ_TO_CAM, render_srgb, srgb_encode, to_uint
from rddm.model.pipeline import Ends
from rddm.server.app import encode_png

EARLIER_PNG = [
    cv2.IMWRITE_PNG_COMPRESSION, 1,
    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB,
]  # fmt: skip


def earlier_png(srgb: np.ndarray) -> bytes:
    """The engine's PNG before 2026-12-01 evening: level 1, RLE, SUB filter."""
    pixels = np.ascontiguousarray(to_uint(srgb, 8)[..., ::-1])
    return cv2.imencode(".png", pixels, EARLIER_PNG)[1].tobytes()


def milliseconds(function, repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return 1000 * (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    fidelity = 0.5 * rng.random((args.size, args.size, 3), dtype=np.float32)
    ends = Ends(fidelity=fidelity, restored=fidelity + 0.01)
    blended = ends.blend(0.3)
    srgb = render_srgb(blended, DEFAULT_XYZ_TO_CAM)
    figures = {
        "blend": milliseconds(lambda: ends.blend(0.3), args.repeats),
        "rendering": milliseconds(lambda: render_srgb(blended, DEFAULT_XYZ_TO_CAM), args.repeats),
        "  of it the transfer curve": milliseconds(lambda: srgb_encode(blended), args.repeats),
        "PNG as sent (8-bit conversion included)": milliseconds(lambda: encode_png(srgb), args.repeats),
        "PNG as sent before (the same)": milliseconds(lambda: earlier_png(srgb), args.repeats),
    }
    for name, value in figures.items():
        print(f"{name}: {value:.2f} ms")
    sizes = len(encode_png(srgb)) / 1000, len(earlier_png(srgb)) / 1000
    print(f"PNG sizes: {sizes[0]:.0f} KB as sent, {sizes[1]:.0f} KB before")


if __name__ == "__main__":
    main()
