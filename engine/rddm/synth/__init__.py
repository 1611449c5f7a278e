"""sRGB -> RAW LQ/HQ pair synthesis: unprocessing, sensor noise, optical degradations."""

from rddm.synth.noise import NOISE_LEVELS, NoiseParams, add_noise, reference_noise
from rddm.synth.pairs import Pair, SynthConfig, pair_rng, synthesize_pair

__all__ = [
    "NOISE_LEVELS",
    "NoiseParams",
    "Pair",
    "SynthConfig",
    "add_noise",
    "pair_rng",
    "reference_noise",
    "synthesize_pair",
]
