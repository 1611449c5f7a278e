"""Unprocessing (Brooks et al., CVPR 2019): sRGB photo -> linear camera RGB -> RAW mosaic."""

from __future__ import annotations

import numpy as np

from rddm.color import srgb_decode, srgb_to_camera_matrix

# XYZ -> camera matrices of real cameras (D65), the pool that random colour corrections mix.
CAMERA_MATRICES: dict[str, np.ndarray] = {
    # The four matrices of Brooks et al.'s unprocessing code (cameras of the MIT-Adobe/Darmstadt sets).
    "brooks2019_a": np.array(
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]]
    ),
    "brooks2019_b": np.array(
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]]
    ),
    "brooks2019_c": np.array(
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]]
    ),
    "brooks2019_d": np.array(
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]]
    ),
    # From the files in ../shared/data/raw (LibRaw's table for the D30; DNG ColorMatrix otherwise).
    "canon_eos_d30": np.array([[0.99, -0.2771, -0.1324], [-0.7072, 1.4229, 0.314], [-0.279, 0.3344, 0.8861]]),
    "gopro_hero": np.array([[1.0344, -0.421, -0.062], [-0.2315, 1.0625, 0.1948], [0.0093, 0.1058, 0.5541]]),
    "nikon_dsc1339": np.array(
        [[0.902, -0.289, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]]
    ),
}


def inverse_tone(srgb: np.ndarray) -> np.ndarray:
    """Undo the smoothstep tone curve assumed on sRGB photos: x' = 0.5 - sin(asin(1 - 2x) / 3)."""
    x = np.clip(srgb, 0.0, 1.0)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)).astype(np.float32)


def tone(x: np.ndarray) -> np.ndarray:
    """The smoothstep tone curve 3x^2 - 2x^3 (forward of :func:`inverse_tone`)."""
    x = np.clip(x, 0.0, 1.0)
    return (3.0 * x**2 - 2.0 * x**3).astype(np.float32)


def random_xyz_to_cam(rng: np.random.Generator, names: list[str] | None = None) -> np.ndarray:
    """A random convex combination of real cameras' XYZ -> camera matrices."""
    pool = [CAMERA_MATRICES[n] for n in (names or sorted(CAMERA_MATRICES))]
    weights = rng.uniform(1e-8, 1.0, size=len(pool))
    weights /= weights.sum()
    return np.tensordot(weights, np.stack(pool), axes=1)


def srgb_to_balanced_camera(srgb: np.ndarray, xyz_to_cam: np.ndarray, *, tone_curve: bool):
    """``(H, W, 3)`` encoded sRGB in [0, 1] -> white-balanced linear camera RGB in [0, 1]."""
    encoded = inverse_tone(srgb) if tone_curve else np.asarray(srgb, dtype=np.float32)
    linear = srgb_decode(encoded)
    camera = linear @ srgb_to_camera_matrix(xyz_to_cam).T.astype(np.float32)
    return np.clip(camera, 0.0, 1.0).astype(np.float32)


def random_wb_gains(
    rng: np.random.Generator,
    red_range: tuple[float, float] = (1.9, 2.4),
    blue_range: tuple[float, float] = (1.5, 1.9),
) -> tuple[float, float, float]:
    """As-shot white-balance gains (R, G, B), green = 1, drawn as in Brooks et al."""
    return (float(rng.uniform(*red_range)), 1.0, float(rng.uniform(*blue_range)))


def unbalance(balanced: np.ndarray, wb_gains, *, inflection: float = 0.9) -> np.ndarray:
    """Divide white-balanced camera RGB by the WB gains, keeping near-white highlights saturated.

    Plain division would turn a clipped white (1, 1, 1) into (1/R, 1, 1/B), a sensor value that
    never saturates; near white the inverse gain fades to 1 instead, as a real sensor clips.
    """
    inverse = 1.0 / np.asarray(wb_gains, dtype=np.float32)
    grey = balanced.mean(axis=-1, keepdims=True)
    mask = (np.clip(grey - inflection, 0.0, None) / (1.0 - inflection)) ** 2
    safe = np.maximum(mask + (1.0 - mask) * inverse, inverse)
    return np.clip(balanced * safe, 0.0, 1.0).astype(np.float32)
