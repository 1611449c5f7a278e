"""Make the bundled sample RAW: a CFA DNG synthesized from a public-domain photo.

    python scripts/make_sample.py ../shared/data/srgb-bench/kodak24/kodim23.png engine/rddm/data/sample.dng

Kodak's suite was released for unrestricted use. The sample is the whole 768x512 image, unprocessed
into RGGB camera space with a fixed seed and given the typical camera's ISO 3200 sensor noise, so the
same command always writes the same file.
"""

from __future__ import annotations

import argparse

from rddm.raw.reader import ExifInfo
from rddm.synth import SynthConfig, pair_rng, synthesize_pair
from rddm.synth.dataset import read_srgb, write_mosaic_dng

SEED = 2023


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="sRGB image (Kodak kodim23)")
    parser.add_argument("out", help="DNG to write")
    args = parser.parse_args()
    config = SynthConfig(noise="reference", iso=3200)
    pair = synthesize_pair(read_srgb(args.source), config, pair_rng(SEED), cfa_pattern="RGGB")
    exif = ExifInfo(make="rddm", model="sample (Kodak kodim23)", iso=3200.0)
    write_mosaic_dng(
        args.out, pair.lq_cfa, pair.cfa_pattern, pair.wb_gains, pair.xyz_to_cam, exif=exif, overwrite=True
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
