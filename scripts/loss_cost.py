"""What a perceptual loss term costs in a training step on this machine: forward and backward of
1 - HaarPSI (the term ``restored_loss`` can weigh, `rddm.train.losses.haarpsi_loss`) and of
shift-tolerant LPIPS with VGG features (the LPIPS-family network whose weights ship with
stlpips-pytorch beside the AlexNet one the evaluation scores with) on one batch of the shipped
recipe's shape (16 sRGB crops of 64x64 px). A whole training step's time is in a run's log.jsonl
(``seconds`` per ``log_every`` steps).

    python scripts/loss_cost.py [--repeats 5] [--threads 2]

Prints the median seconds of each over ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rddm.train.losses import haarpsi_loss


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up: first-call allocation and kernel choice
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    target = torch.rand(args.batch, 3, args.crop, args.crop)
    prediction = (target + 0.05 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)

    def haarpsi_step():
        haarpsi_loss(prediction, target).backward()

    from stlpips_pytorch import stlpips

    network = stlpips.LPIPS(net="vgg", variant="shift_tolerant").eval()

    def stlpips_step():
        network(prediction * 2 - 1, target * 2 - 1).mean().backward()

    print(f"batch {args.batch}x3x{args.crop}x{args.crop}, {args.threads} threads, median of {args.repeats}:")
    print(f"  1 - HaarPSI forward + backward: {median_seconds(haarpsi_step, args.repeats) * 1000:.1f} ms")
    print(f"  ST-LPIPS (VGG) forward + backward: {median_seconds(stlpips_step, args.repeats):.2f} s")


if __name__ == "__main__":
    main()
