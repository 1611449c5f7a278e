"""The README's before/after crop: one region of a RAW as LibRaw's AHD demosaic renders it and as
the shipped model restores it (strength 0.5), side by side at 2x, in the same neutral rendering.

    python scripts/make_before_after.py RAW X,Y,SIZE OUT.jpg [--model rddm-tiny]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import rawpy

from rddm.color import render_srgb, to_uint, white_balance
from rddm.io.images import upright
from rddm.model.registry import load_pipeline
from rddm.raw import read_raw
from rddm.restore import packed_tiling


def ahd_region(path: str, raw, region: tuple[int, int, int, int]) -> np.ndarray:
    """White-balanced linear camera RGB of the region by LibRaw's AHD (no flip, no brightening)."""
    with rawpy.imread(path) as image:
        rgb = image.postprocess(
            demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
            output_color=rawpy.ColorSpace.raw,
            gamma=(1, 1),
            no_auto_bright=True,
            use_camera_wb=False,
            user_wb=[1.0, 1.0, 1.0, 1.0],
            output_bps=16,
            user_flip=0,
            adjust_maximum_thr=0.0,  # keep the file's white level (LibRaw's default may raise it)
        )
    x, y, width, height = region
    camera = rgb[y : y + height, x : x + width].astype(np.float32) / 65535.0
    return white_balance(camera, raw.wb_gains)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw")
    parser.add_argument("region", help="X,Y,SIZE in pixels of the stored image")
    parser.add_argument("out")
    parser.add_argument("--model", default="rddm-tiny")
    args = parser.parse_args()
    x, y, size = (int(value) for value in args.region.split(","))
    region = (x, y, size, size)
    raw = read_raw(args.raw)
    pipeline = load_pipeline(args.model)
    tile, overlap = packed_tiling(pipeline)
    restored = pipeline(raw, 0.5, roi=region, tile_size=tile, tile_overlap=overlap)
    panels = []
    for balanced in (ahd_region(args.raw, raw, region), restored):
        srgb = upright(render_srgb(balanced, raw.xyz_to_cam), raw.orientation)
        pixels = to_uint(srgb, 8)
        panels.append(cv2.resize(pixels, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
    gap = np.full((panels[0].shape[0], 8, 3), 32, np.uint8)
    figure = np.concatenate([panels[0], gap, panels[1]], axis=1)
    cv2.imwrite(args.out, figure[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    print(f"{args.out}: left LibRaw AHD, right {args.model} at strength 0.5, region {region} at 2x")


if __name__ == "__main__":
    main()
