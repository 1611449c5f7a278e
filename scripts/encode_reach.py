"""How far (packed pixels) a model's encoder side reads around a point: nudge one packed pixel of
random planes and see how far the RVAE's latent, the UNet's x0 prediction ``z_hq`` and each skip
feature change. Against the decoder's reaches (``RDDMPipeline.decode_reaches``) this says whether a
region restore could also encode only part of a tile: the restored end needs ``z_hq`` exact over
the first decode box, so a tile's encode could shrink only to that box plus ``z_hq``'s reach.

    python scripts/encode_reach.py [--model rddm-tiny] [--size 512]
"""

from __future__ import annotations

import argparse

import torch

from rddm.model.registry import load_pipeline


def reach(base: torch.Tensor, nudged: torch.Tensor, middle: int, scale: int) -> int | None:
    """Packed pixels from ``middle`` to the farthest change of a feature at 1/``scale`` resolution."""
    changed = (base != nudged)[0].any(dim=0)
    rows = torch.nonzero(changed.any(dim=1)).flatten()
    cols = torch.nonzero(changed.any(dim=0)).flatten()
    if len(rows) == 0:
        return 0
    if min(rows.min(), cols.min()) == 0 or max(rows.max(), cols.max()) == changed.shape[-1] - 1:
        return None  # reaches the probe's edge: no bound seen
    at = middle // scale
    return scale * int(max(at - rows.min(), rows.max() - at, at - cols.min(), cols.max() - at))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rddm-tiny")
    parser.add_argument("--size", type=int, default=512, help="probe size in packed pixels")
    args = parser.parse_args()
    pipeline = load_pipeline(args.model)
    pipeline._inference_adapter("RGGB")
    size, middle = args.size, args.size // 2
    planes = torch.rand(1, 4, size, size, generator=torch.Generator().manual_seed(0))
    nudged = planes.clone()
    nudged[..., middle, middle] += 0.25
    base, moved = pipeline._encode_tile(planes, True), pipeline._encode_tile(nudged, True)
    latent_scale = size // base[0].shape[-1]
    print(f"latent: {reach(base[0], moved[0], middle, latent_scale)} packed px")
    print(f"z_hq (UNet x0): {reach(base[2], moved[2], middle, latent_scale)} packed px")
    skips = base[1] if isinstance(base[1], (list, tuple)) else [base[1]]
    moved_skips = moved[1] if isinstance(moved[1], (list, tuple)) else [moved[1]]
    for index, (feature, other) in enumerate(zip(skips, moved_skips, strict=True)):
        if torch.is_tensor(feature) and feature.dim() == 4:
            scale = size // feature.shape[-1]
            print(f"skip {index} (1/{scale}): {reach(feature, other, middle, scale)} packed px")
    print(f"decoder reaches per cut {pipeline.rvae.decode_cuts}: {pipeline.decode_reaches('RGGB')}")


if __name__ == "__main__":
    main()
