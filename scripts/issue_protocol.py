"""Noise-free demosaicking in the training issue's own protocol, the one its bars are set in.

The shared data's reference points (../shared/data/README.md): the RGGB mosaic of each sRGB image's
encoded values, demosaicked, PSNR in encoded sRGB with a 10 px border removed (bilinear 30.24 /
32.30 dB, LibRaw AHD 37.05 / 35.06, AAHD 37.73 / 35.32 on Kodak24 / McMaster18); the bars are
38.5 / 36.0 dB. Bilinear and LibRaw's demosaics run on the encoded mosaic as it is (their rows
reproduce the reference points, which checks the protocol); a model, which reads sensor data,
gets each sample decoded to linear light (exactly the linear mosaic: the curve acts per sample),
and its linear output is encoded again. ``rddm eval --mosaic srgb`` differs from this in its
linear mosaics for LibRaw, its 8 px border and its four patterns.

    python scripts/issue_protocol.py --model rddm-tiny [runs/x/model ...] [--images N] [--no-libraw]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from rddm.color import DEFAULT_XYZ_TO_CAM, srgb_decode, srgb_encode
from rddm.evaluate.baselines import libraw_demosaic
from rddm.model.registry import load_pipeline
from rddm.model.rvae import bilinear_demosaic
from rddm.raw import RawImage
from rddm.raw.cfa import mosaic_rgb, pack
from rddm.restore import packed_tiling
from rddm.synth.dataset import list_images, read_srgb

BORDER = 10
DATASETS = ("../shared/data/srgb-bench/kodak24", "../shared/data/srgb-bench/mcmaster18")
BARS = {"kodak24": 38.5, "mcmaster18": 36.0}


def psnr(prediction: np.ndarray, reference: np.ndarray) -> float:
    a = np.clip(prediction, 0, 1)[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    b = reference[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def bilinear(cfa: np.ndarray) -> np.ndarray:
    planes = torch.from_numpy(pack(cfa, "RGGB"))[None]
    return bilinear_demosaic(planes, "RGGB")[0].numpy().transpose(1, 2, 0)


def model_demosaic(pipeline, encoded_cfa: np.ndarray) -> np.ndarray:
    samples = srgb_decode(encoded_cfa)
    raw = RawImage(cfa=samples, cfa_pattern="RGGB", wb_gains=(1.0, 1.0, 1.0), xyz_to_cam=DEFAULT_XYZ_TO_CAM)
    tile_size, tile_overlap = packed_tiling(pipeline)
    linear = pipeline.restore_ends(raw, tile_size=tile_size, tile_overlap=tile_overlap).blend(0.5)
    return srgb_encode(linear)  # the identity camera: its white-balanced RGB is linear sRGB


def demosaic_scores(image: np.ndarray, pipelines: dict, libraw: bool = True) -> dict:
    """PSNR of each method on the RGGB mosaic of the encoded sRGB ``image``: bilinear, LibRaw's
    AHD and AAHD (with ``libraw``), then each model."""
    cfa = mosaic_rgb(image, "RGGB")
    outputs = {"bilinear": bilinear(cfa)}
    if libraw:
        for algorithm in ("ahd", "aahd"):
            outputs[algorithm] = libraw_demosaic(cfa, "RGGB", (1.0, 1.0, 1.0), DEFAULT_XYZ_TO_CAM, algorithm)
    for model, pipeline in pipelines.items():
        outputs[model] = model_demosaic(pipeline, cfa)
    return {method: psnr(output, image) for method, output in outputs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="*", default=["rddm-tiny"], help="model names or folders")
    parser.add_argument("--data", nargs="+", default=list(DATASETS))
    parser.add_argument("--images", type=int, help="first N images of each set")
    parser.add_argument("--no-libraw", action="store_true", help="the models and bilinear only")
    parser.add_argument("--json", help="also write the per-image PSNRs here")
    args = parser.parse_args()
    pipelines = {model: load_pipeline(model) for model in args.model}
    methods = ["bilinear", *([] if args.no_libraw else ["ahd", "aahd"]), *pipelines]
    results: dict = {}
    for folder in args.data:
        name = Path(folder).name
        results[name] = {}
        for path in list_images(folder)[: args.images]:
            image = read_srgb(path)
            image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
            scores = results[name][path.stem] = demosaic_scores(image, pipelines, not args.no_libraw)
            print(f"{name} {path.stem}: " + " ".join(f"{m} {v:.2f}" for m, v in scores.items()))
            sys.stdout.flush()
    print(f"\nnoise-free RGGB mosaics of encoded sRGB, {BORDER} px border, PSNR dB (mean over images)")
    for name, images in results.items():
        bar = f" (bar {BARS[name]})" if name in BARS else ""
        means = {m: np.mean([row[m] for row in images.values()]) for m in methods}
        print(f"{name}{bar}: " + ", ".join(f"{m} {v:.2f}" for m, v in means.items()))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
