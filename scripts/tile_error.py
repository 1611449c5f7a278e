"""How far tiled restores are from one whole-image restore (`make tile-error`).

For a real RAW and a Kodak photo made into an ISO 3200 RGGB mosaic: the largest and the mean
difference (linear, strength 0.5; and in 8-bit levels of the neutral sRGB rendering) for several
tile sizes and overlaps (packed pixels), and which stage's tile edges make the error (encoder,
UNet or decoder tiled alone, the others whole).

    python scripts/tile_error.py RAW PHOTO [--model rddm-tiny] [--unet-padding replicate]
        [--tiles 128/64 256/32 256/48 256/64]

256/48 is what the CLI and the engine use (rddm.restore.packed_tiling).

``--unet-padding`` pads the UNet's convolutions as given instead of as the model's index says
(``unet_padding_mode``; zeros without it).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from rddm.color import render_srgb
from rddm.evaluate.bench import bench_raw
from rddm.model.padding import PADDING_MODES, use_padding
from rddm.model.registry import load_pipeline
from rddm.model.tiling import feather, tile_grid
from rddm.raw import read_raw

SETTINGS = [(128, 64), (256, 32), (256, 48), (256, 64)]


def tiled_against_whole(pipeline, raw, name: str, settings=SETTINGS) -> None:
    packed = max((raw.cfa.shape[0] + 1) // 2, (raw.cfa.shape[1] + 1) // 2)
    whole_tile = -(-packed // pipeline.tile_multiple) * pipeline.tile_multiple
    whole = pipeline(raw, 0.5, tile_size=whole_tile, tile_overlap=0)
    whole_srgb = render_srgb(whole, raw.xyz_to_cam)
    for size, overlap in settings:
        tiled = pipeline(raw, 0.5, tile_size=size, tile_overlap=overlap)
        error = np.abs(tiled - whole)
        # What a viewer sees: the neutral sRGB renderings' difference in 8-bit levels.
        levels = 255 * np.abs(render_srgb(tiled, raw.xyz_to_cam) - whole_srgb)
        print(
            f"{name}: tiles {size}/{overlap}: max {error.max():.2e}, mean {error.mean():.2e}; "
            f"rendered max {levels.max():.1f} levels, {np.mean(levels > 1):.1e} of values over 1 level"
        )


def _blend(run, height, width, size, overlap, scale: int, channels: int, multiple: int = 1):
    out = torch.zeros(1, channels, height * scale, width * scale)
    weights = torch.zeros(height * scale, width * scale)
    for tile in tile_grid(height, width, size, overlap, multiple):
        weight = feather(tile, height, width, overlap, scale=scale)
        rows = slice(tile.top * scale, tile.bottom * scale)
        cols = slice(tile.left * scale, tile.right * scale)
        out[..., rows, cols] += run(tile) * weight
        weights[rows, cols] += weight
    return out / weights


@torch.no_grad()
def stages(pipeline, raw, size: int = 128, overlap: int = 64) -> None:
    """Each stage tiled alone (latent tiles for the encoder and UNet, pixel tiles for the decoder)."""
    pipeline.activate_adapter(raw.cfa_pattern)
    height, width = ((raw.cfa.shape[0] + 1) // 2) // 32 * 32, ((raw.cfa.shape[1] + 1) // 2) // 32 * 32
    planes = pipeline._area_planes(raw.cfa, raw.cfa_pattern, raw.wb_gains, (0, 0, height, width))[None]
    pattern, f = raw.cfa_pattern, pipeline.rvae.downscale // 2  # the latent's scale on the planes
    alpha = pipeline.scheduler.alphas_cumprod[pipeline.timestep]
    prompt = pipeline.null_prompt.expand(1, -1, -1)

    def unet(latent):
        return pipeline.unet(latent, pipeline.timestep, encoder_hidden_states=prompt).sample

    def restored(latent, eps):
        return (latent - (1 - alpha).sqrt() * eps) / alpha.sqrt()

    latent, skip = pipeline.rvae.encode(planes)
    eps = unet(latent)
    whole = pipeline.rvae.decode(restored(latent, eps), skip, planes, pattern)
    # Latent tiles on the UNet's own grid, as the pipeline's (see RDDMPipeline.tile_multiple).
    small = (
        height // f,
        width // f,
        size // f,
        overlap // f,
        1,
        latent.shape[1],
        pipeline.tile_multiple // f,
    )

    def encode_tile(t):
        return pipeline.rvae.encode(planes[..., t.top * f : t.bottom * f, t.left * f : t.right * f])[0]

    tiled_latent = _blend(encode_tile, *small)
    tiled_eps = _blend(lambda t: unet(latent[..., t.top : t.bottom, t.left : t.right]), *small)
    target = restored(latent, eps)

    def decode_tile(t):
        return pipeline.rvae.decode(
            target[..., t.top // f : t.bottom // f, t.left // f : t.right // f],
            None if skip is None else skip[..., t.top : t.bottom, t.left : t.right],
            planes[..., t.top : t.bottom, t.left : t.right],
            pattern,
        )

    cases = {
        "encoder": pipeline.rvae.decode(restored(tiled_latent, unet(tiled_latent)), skip, planes, pattern),
        "UNet": pipeline.rvae.decode(restored(latent, tiled_eps), skip, planes, pattern),
        "decoder": _blend(decode_tile, height, width, size, overlap, 2, 3, multiple=f),
    }
    for name, image in cases.items():
        error = (image - whole).abs()
        print(f"only the {name} tiled ({size}/{overlap}): max {error.max():.2e}, mean {error.mean():.2e}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("raw")
    parser.add_argument("photo")
    parser.add_argument("--model", default="rddm-tiny")
    parser.add_argument("--unet-padding", choices=PADDING_MODES, help="instead of the model's own")
    parser.add_argument(
        "--tiles", nargs="+", default=[f"{size}/{overlap}" for size, overlap in SETTINGS], help="SIZE/OVERLAP"
    )
    args = parser.parse_args()
    settings = [tuple(int(part) for part in tiles.split("/")) for tiles in args.tiles]
    pipeline = load_pipeline(args.model)
    if args.unet_padding:
        use_padding(args.unet_padding, pipeline.unet)
    tiled_against_whole(pipeline, read_raw(args.raw), Path(args.raw).name, settings)
    with tempfile.TemporaryDirectory() as scratch:
        photo = read_raw(bench_raw(Path(scratch), "photo", 1024, 1024, source=args.photo))
    tiled_against_whole(pipeline, photo, f"{Path(args.photo).name} 1024x1024 ISO 3200", settings)
    stages(pipeline, photo)


if __name__ == "__main__":
    main()
