"""Training pairs synthesized on the fly from a folder of clean sRGB photos."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from rddm.color import camera_to_srgb_matrix, srgb_decode, srgb_encode
from rddm.raw.cfa import CFA_PATTERNS, balance_planes, check_pattern, pack, pattern_after_crop
from rddm.synth import SynthConfig, synthesize_pair
from rddm.synth.dataset import list_images, random_crop, read_srgb


def load_sources(folder: str, min_side: int) -> list[np.ndarray]:
    """Every image of ``folder`` in memory; large ones area-downscaled by 2 (cleaner pixels)."""
    images = []
    for path in list_images(folder):
        image = read_srgb(path)
        if max(image.shape[:2]) >= min_side:
            image = cv2.resize(
                image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA
            )
        images.append(image)
    return images


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flip and 90-degree rotation of the sRGB crop: the pattern is drawn afterwards, so every
    geometry meets every Bayer phase (the same as flipping the mosaic and updating its pattern)."""
    if rng.uniform() < 0.5:
        image = image[:, ::-1]
    return np.ascontiguousarray(np.rot90(image, rng.integers(4)))


# Rec. 709 / sRGB luminance weights of linear RGB.
_LUMINANCE = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def saturate(image: np.ndarray, factor: float, mode: str = "clip") -> np.ndarray:
    """Scale an sRGB image's chroma by ``factor`` in linear light, keeping each pixel's luminance:
    ``y + k * (rgb - y)``. Natural photo sets have few of the saturated colours (flowers, signs,
    stage light) whose weakest channel sits near zero, where the sRGB curve magnifies every linear
    error; McMaster18 is made of such colours.

    ``mode="clip"``: ``k = factor`` and the result is clipped to [0, 1], so every pixel pushed past
    the gamut lands on a channel of exactly 0 or 1 (trained on, this taught a colour cast: see the
    README). ``mode="compress"``: per pixel, ``k`` approaches the largest scale ``m`` that stays in
    gamut, ``k - 1 = h a / (a + h)`` with ``h = m - 1`` and ``a = factor - 1`` (Reinhard-like), so
    nothing is clipped: the room left towards the gamut edge shrinks by ``h / (a + h)``, a weak
    channel nears 0 without reaching it and keeps its order among pixels, and colours already at
    the edge stay as they are."""
    if mode not in ("clip", "compress"):
        raise ValueError(f"saturation mode must be clip or compress, not {mode!r}")
    linear = srgb_decode(image)
    luminance = linear @ _LUMINANCE
    chroma = linear - luminance[..., None]
    if mode == "clip" or factor <= 1.0:
        out = luminance[..., None] + factor * chroma
        return srgb_encode(np.clip(out, 0.0, 1.0)).astype(np.float32)
    # Largest in-gamut scale per pixel: each channel's room towards 0 (negative chroma) or 1.
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(chroma < 0, luminance[..., None] / -chroma, (1.0 - luminance[..., None]) / chroma)
    room = np.where(np.abs(chroma) > 1e-7, room, np.inf).min(axis=-1)
    headroom = np.maximum(room - 1.0, 0.0)
    gain = factor - 1.0
    with np.errstate(invalid="ignore"):
        k = np.where(np.isinf(headroom), factor, 1.0 + headroom * gain / (gain + headroom))
    out = luminance[..., None] + k[..., None] * chroma
    return srgb_encode(np.clip(out, 0.0, 1.0)).astype(np.float32)


def _tensors(pair) -> dict:
    return {
        "planes": torch.from_numpy(balance_planes(pack(pair.lq_cfa, pair.cfa_pattern), pair.wb_gains)),
        "target": torch.from_numpy(np.ascontiguousarray(pair.hq.transpose(2, 0, 1))),
        "to_srgb": torch.from_numpy(camera_to_srgb_matrix(pair.xyz_to_cam).astype(np.float32)),
    }


def _stack(samples: list[dict], pattern: str) -> dict:
    batch = {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
    batch["pattern"] = pattern
    return batch


class PairBatches:
    """Batches synthesized on the fly; batch ``k`` depends only on (seed, k, process), so a resumed
    run sees exactly the batches it would have seen. One Bayer pattern per batch (one adapter runs
    per forward pass); the noise kind is drawn per sample from ``noise_mix``.

    With ``canonical_pattern`` every mosaic is of that pattern: canonicalisation in training, the
    same as shifting each mosaic of another pattern by a row and/or column onto it (a random crop
    has no preferred phase). The pattern is still drawn, so each batch starts from the same crop as
    in a run over all four patterns with the same seed; the streams part after the first noisy
    sample (Poisson draws consume the generator by value), the distribution stays the same."""

    def __init__(
        self,
        images,
        crop: int,
        batch_size: int,
        noise_mix: dict,
        base: SynthConfig,
        seed: int,
        skip_dropout: float = 0.0,
        saturation_probability: float = 0.0,
        saturation_range: tuple[float, float] = (1.0, 1.0),
        saturation_mode: str = "clip",
        canonical_pattern: str | None = None,
        srgb_camera_probability: float = 0.0,
    ):
        self.images = [im for im in images if min(im.shape[:2]) >= crop]
        if not self.images:
            raise ValueError(f"no training image is at least {crop} pixels on its short side")
        self.crop, self.batch_size, self.seed, self.skip_dropout = crop, batch_size, seed, skip_dropout
        self.saturation_probability, self.saturation_range = saturation_probability, saturation_range
        self.saturation_mode = saturation_mode
        self.canonical_pattern = check_pattern(canonical_pattern) if canonical_pattern else None
        self.kinds = list(noise_mix)
        weights = np.asarray([noise_mix[k] for k in self.kinds], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.configs = {kind: dataclasses.replace(base, noise=kind) for kind in self.kinds}
        self.srgb_camera_probability = srgb_camera_probability
        self.srgb_configs = {k: dataclasses.replace(c, srgb_camera=True) for k, c in self.configs.items()}

    def batch(self, step: int, process: int = 0) -> dict:
        rng = np.random.default_rng([self.seed, step, process])
        drawn = CFA_PATTERNS[rng.integers(4)]  # drawn in any case: the same stream of crops
        if process:  # every process of a step trains the pattern of process 0: the same adapter
            drawn = CFA_PATTERNS[np.random.default_rng([self.seed, step, 0]).integers(4)]
        pattern = self.canonical_pattern or drawn
        samples = []
        for _ in range(self.batch_size):
            image = self.images[rng.integers(len(self.images))]
            kind = self.kinds[rng.choice(len(self.kinds), p=self.weights)]
            patch = _augment(random_crop(image, self.crop, rng), rng)
            # Drawn only when enabled, so configs without it keep their batches.
            if self.saturation_probability > 0 and rng.uniform() < self.saturation_probability:
                patch = saturate(patch, float(rng.uniform(*self.saturation_range)), self.saturation_mode)
            config = self.configs[kind]
            if self.srgb_camera_probability > 0 and rng.uniform() < self.srgb_camera_probability:
                config = self.srgb_configs[kind]  # drawn only when enabled, like the saturation
            samples.append(_tensors(synthesize_pair(patch, config, rng, cfa_pattern=pattern)))
        batch = _stack(samples, pattern)
        batch["skip_keep"] = torch.from_numpy(
            (rng.uniform(size=self.batch_size) >= self.skip_dropout).astype(np.float32)
        )
        return batch


class _StepBatches(torch.utils.data.Dataset):
    """Batch ``k`` of a run, for a DataLoader whose workers synthesize batches ahead of the model."""

    def __init__(self, batches: PairBatches, start: int, end: int, process: int):
        self.batches, self.start, self.end, self.process = batches, start, end, process

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __getitem__(self, index: int) -> dict:
        return self.batches.batch(self.start + index, self.process)


def _worker_threads(_worker: int) -> None:
    torch.set_num_threads(1)  # torch resets its thread pool in a forked child itself


def step_batches(batches: PairBatches, start: int, end: int, process: int = 0, workers: int = 0):
    """Batches ``start .. end - 1`` in order. With ``workers`` processes they are synthesized ahead
    (each batch still depends only on its step, so the result is the same as ``workers=0``)."""
    if workers <= 0:
        return (batches.batch(step, process) for step in range(start, end))
    # OpenCV's thread pool does not survive a fork: a worker that touched it (even to shrink it)
    # hung in pthread_cond_destroy. Forked while the parent runs OpenCV single-threaded, the workers
    # have no pool to inherit; the parent gets its threads back once they are started.
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return iter(
            torch.utils.data.DataLoader(
                _StepBatches(batches, start, end, process),
                batch_size=None,
                shuffle=False,
                num_workers=workers,
                prefetch_factor=4,
                persistent_workers=False,
                pin_memory=torch.cuda.is_available(),
                worker_init_fn=_worker_threads,
            )
        )
    finally:
        cv2.setNumThreads(threads)


def validation_batches(
    images,
    crop: int,
    iso: int | None = 3200,
    seed: int = 1234,
    canonical_pattern: str | None = None,
    srgb_camera: bool = False,
) -> list[dict]:
    """Fixed batches, one per pattern: the centre crop of every validation image at the reference
    noise of ``iso`` (noise-free for None), mosaicked by a real camera's matrix or, with
    ``srgb_camera``, as linear sRGB itself (the usual demosaicking protocol, ``rddm eval --mosaic srgb``).

    With ``canonical_pattern`` (a model trained on that pattern only) each batch is what the model
    runs for that pattern at inference: the mosaic shifted by a row and/or column onto the
    canonical pattern, that is the canonical pattern's mosaic of the crop moved by as much."""
    config = SynthConfig(noise="none" if iso is None else "reference", iso=iso, srgb_camera=srgb_camera)
    canonical = check_pattern(canonical_pattern) if canonical_pattern else None
    spare = 1 if canonical else 0  # one row and one column kept spare for the shift below
    batches = []
    for pattern_index, pattern in enumerate(CFA_PATTERNS):
        runs, down, right = pattern, 0, 0
        if canonical:
            runs = canonical
            down, right = next(
                (t, c) for t in (0, 1) for c in (0, 1) if pattern_after_crop(pattern, t, c) == canonical
            )
        samples = []
        for index, image in enumerate(images):
            height, width = image.shape[:2]
            size = min(crop, height - spare, width - spare) // 8 * 8
            top, left = (height - size) // 4 * 2 + down, (width - size) // 4 * 2 + right
            rng = np.random.default_rng([seed, index, pattern_index])
            pair = synthesize_pair(image[top : top + size, left : left + size], config, rng, cfa_pattern=runs)
            samples.append(_tensors(pair))
        batches.append(_stack(samples, runs))
    return batches
