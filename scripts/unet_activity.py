"""Is a model's UNet alive? On a real RAW: the share of the UNet's last activations (after its final
SiLU) that are not ~0, the mean of its last up block's features, how far a change of the latent at
one point moves the noise prediction, and how far apart the two strength ends are.

    python scripts/unet_activity.py [RAW] [--model rddm-tiny]

A UNet whose features were driven far negative (the norm-free step-8000 and step-12000 rddm-tiny)
shows a share near 0 and a latent change that moves nothing: its noise prediction is one constant.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from rddm.model.registry import load_pipeline
from rddm.raw import read_raw

DEFAULT_RAW = "../shared/data/raw/plain/isp_mushfiqulalam_nikon/DSC_1339_768x512_rggb.dng"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("raw", nargs="?", default=DEFAULT_RAW)
    parser.add_argument("--model", default="rddm-tiny")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipeline = load_pipeline(args.model).to("cpu")
    raw = read_raw(args.raw)
    seen: dict[str, list[torch.Tensor]] = {"act": [], "up": []}
    pipeline.unet.conv_act.register_forward_hook(lambda m, i, out: seen["act"].append(out.detach()))
    pipeline.unet.up_blocks[-1].register_forward_hook(lambda m, i, out: seen["up"].append(out.detach()))
    ends = pipeline.restore_ends(raw, tile_size=512, tile_overlap=32)
    active = float(np.mean([float((a.abs() > 1e-3).float().mean()) for a in seen["act"]]))
    features = float(np.mean([float(u.mean()) for u in seen["up"]]))
    # One latent point changed: how many noise-prediction pixels move (of the whole map)?
    pipeline.activate_adapter(raw.cfa_pattern if pipeline.adapters else "RGGB")
    latent = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    prompt = pipeline.null_prompt
    with torch.no_grad():
        eps = pipeline.unet(latent, pipeline.timestep, encoder_hidden_states=prompt).sample
        nudged = latent.clone()
        nudged[..., 32, 32] += 0.25
        moved = pipeline.unet(nudged, pipeline.timestep, encoder_hidden_states=prompt).sample != eps
    gap = np.abs(ends.fidelity - ends.restored)
    print(
        f"{args.model} on {args.raw}: live last UNet activations {active:.2e}; last up block's "
        f"features mean {features:.4g}; a one-point latent change moves {int(moved.any(1).sum())} of "
        f"{64 * 64} noise-prediction pixels; strength ends differ by max {gap.max():.4f}, "
        f"mean {gap.mean():.5f}"
    )


if __name__ == "__main__":
    main()
