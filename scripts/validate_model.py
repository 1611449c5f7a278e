"""Validation PSNR of model folders, as training logs it, with a chosen padding mode.

The held-out crops of a training config (its last ``validation_images`` photos, 256 px centre
crops, all four patterns, at its validation ISO), both strength ends, neutral sRGB, as
``rddm train`` logs ``val_psnr_fidelity`` / ``val_psnr_restored``. With ``--padding`` each model
is scored with its own padding and with each mode given for its RVAE (see ``rddm.model.padding``);
``--unet-padding`` pads the UNet's convolutions as given instead of as the model's index says
(``unet_padding_mode``; zeros without it). A model trained on one pattern (``canonical_pattern``)
gets each crop shifted onto it, as training validates it. ``--srgb-camera`` mosaics the crops as
the usual demosaicking protocol does (linear sRGB itself, ``rddm eval --mosaic srgb``) and
``--noise-free`` leaves out the noise: held-out figures for that protocol's bars. ``--saturate F``
scales the photos' chroma by F first (``rddm.train.data.saturate``, compress mode): held-out
saturated colours, the kind McMaster18 is made of, without scoring on a benchmark set.

    python scripts/validate_model.py --config rddm-tiny-saturated-2 rddm-tiny runs/x/model \
        [--padding zeros replicate] [--unet-padding replicate] [--srgb-camera] [--noise-free] [--saturate 2]
"""

from __future__ import annotations

import argparse

from rddm.model.padding import PADDING_MODES, use_padding
from rddm.model.registry import load_pipeline
from rddm.train.config import load_config
from rddm.train.data import load_sources, saturate, validation_batches
from rddm.train.loop import RDDMTrainer, validation_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names or folders")
    parser.add_argument("--config", default="rddm-tiny", help="training config (its validation crops)")
    parser.add_argument("--padding", nargs="*", default=[], choices=PADDING_MODES)
    parser.add_argument("--unet-padding", choices=PADDING_MODES, help="instead of the model's own")
    parser.add_argument("--srgb-camera", action="store_true", help="mosaic linear sRGB itself")
    parser.add_argument("--noise-free", action="store_true", help="no noise (default: the config's ISO)")
    parser.add_argument("--saturate", type=float, metavar="F", help="scale the photos' chroma by F first")
    args = parser.parse_args()
    config = load_config(args.config)
    images = load_sources(config.data_dir, config.source_downscale_min_side)[-config.validation_images :]
    if args.saturate:
        images = [saturate(image, args.saturate, "compress") for image in images]
    batches = {}  # by canonical pattern (None: every pattern as it is)
    for model in args.models:
        pipeline = load_pipeline(model)
        canonical = pipeline.info.get("canonical_pattern")
        if canonical not in batches:
            batches[canonical] = validation_batches(
                images,
                256,
                None if args.noise_free else config.validation_iso,
                canonical_pattern=canonical,
                srgb_camera=args.srgb_camera,
            )
        own = pipeline.info.get("padding_mode", "zeros")
        unet = args.unet_padding or pipeline.info.get("unet_padding_mode", "zeros")
        use_padding(unet, pipeline.unet)
        for mode in [own, *[m for m in args.padding if m != own]]:
            use_padding(mode, pipeline.rvae)
            scores = validation_scores(RDDMTrainer(pipeline), batches[canonical])
            print(
                f"{model} ({mode} padding, UNet {unet}): "
                f"fidelity end {scores['val_psnr_fidelity']:.3f} dB, "
                f"restored end {scores['val_psnr_restored']:.3f} dB"
            )


if __name__ == "__main__":
    main()
