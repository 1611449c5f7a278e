"""Validation PSNR of model folders, as training logs it, with a chosen padding mode.

The held-out crops of a training config (its last ``validation_images`` photos, 256 px centre
crops, all four patterns, at its validation ISO), both strength ends, neutral sRGB, as
``rddm train`` logs ``val_psnr_fidelity`` / ``val_psnr_restored``. With ``--padding`` each model
is scored with its own padding and with each mode given for its RVAE (see ``rddm.model.padding``);
``--unet-padding`` pads the UNet's convolutions as given instead of as the model's index says
(``unet_padding_mode``; zeros without it). A model trained on one pattern (``canonical_pattern``)
gets each crop shifted onto it, as training validates it.

    python scripts/validate_model.py --config rddm-tiny-saturated-2 rddm-tiny runs/x/model \
        [--padding zeros replicate] [--unet-padding replicate]
"""

from __future__ import annotations

import argparse

from rddm.model.padding import PADDING_MODES, use_padding
from rddm.model.registry import load_pipeline
from rddm.train.config import load_config
from rddm.train.data import load_sources, validation_batches
from rddm.train.loop import RDDMTrainer, validation_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names or folders")
    parser.add_argument("--config", default="rddm-tiny", help="training config (its validation crops)")
    parser.add_argument("--padding", nargs="*", default=[], choices=PADDING_MODES)
    parser.add_argument("--unet-padding", choices=PADDING_MODES, help="instead of the model's own")
    args = parser.parse_args()
    config = load_config(args.config)
    images = load_sources(config.data_dir, config.source_downscale_min_side)
    batches = {}  # by canonical pattern (None: every pattern as it is)
    for model in args.models:
        pipeline = load_pipeline(model)
        canonical = pipeline.info.get("canonical_pattern")
        if canonical not in batches:
            batches[canonical] = validation_batches(
                images[-config.validation_images :], 256, config.validation_iso, canonical_pattern=canonical
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
