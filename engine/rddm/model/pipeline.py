"""RDDMPipeline: a Bayer RAW in, white-balanced linear camera RGB out, in one diffusion step.

For each tile of the packed, white-balanced mosaic:
    z_lq, skip = RVAE.encode(planes)                      (pattern's CMB-LoRA adapter on)
    eps = UNet(z_lq, t, null_prompt)                       (one step at the fixed timestep t)
    z_hq = (z_lq - sqrt(1 - a_t) * eps) / sqrt(a_t)       (OSEDiff: the x0 prediction)
    fidelity = RVAE.decode(z_lq, skip, planes, pattern)     strength 0
    restored = RVAE.decode(z_hq, skip, planes, pattern)     strength 1
and ``out = (1 - s) * fidelity + s * restored`` blended over tiles with feathered weights. The
output is linear and monotonic in ``s`` by construction, and a caller holding both ends (see
:class:`Ends`) changes strength with a blend, not a model run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from peft.tuners.tuners_utils import BaseTunerLayer

from rddm.errors import RddmError
from rddm.model.fast import use_fast_inference
from rddm.model.lora import adapter_name
from rddm.model.rvae import RawVAE
from rddm.model.tiling import Tile, feather, tile_grid, tiles_touching
from rddm.model.workers import TileWorkers
from rddm.raw.cfa import balance_planes, check_pattern, pattern_after_crop, plane_offsets
from rddm.raw.reader import RawImage

# A 2x2 block whose four values all reach this is clipped in the RAW: it renders neutral white.
CLIPPED = 0.995
# Packed pixels: the tiles of a restore given none (the CLI and the engine pass theirs,
# rddm.restore.packed_tiling, which come to the same for rddm-tiny).
TILE_SIZE = 256
TILE_OVERLAP = 48


# Tiles of a region run on the CPU's workers in waves of this many (a whole image's in waves of one
# per worker, which keeps its progress, Cancel and memory to a tile each): a 512 px region touches
# at most 9 tiles at the default tiling, and in one wave no worker idles while the other finishes a
# wave's last tile (the bench's 24 regions of a 12 MP file, mean / slowest 0.877 / 1.072 s against
# 0.891 / 1.085 s in waves of two, interleaved: `make tile-timing`).
REGION_WAVE = 9


class Cancelled(RddmError):
    """The restore was cancelled between tiles."""


@dataclasses.dataclass
class Ends:
    """Both strength ends of a restored region, ``(H, W, 3)`` float32 each, not clipped to [0, 1]
    (so that ``blend(s)``, which clips, is exactly the output at strength ``s``)."""

    fidelity: np.ndarray
    restored: np.ndarray

    def blend(self, strength: float) -> np.ndarray:
        check_strength(strength)
        return np.clip((1.0 - strength) * self.fidelity + strength * self.restored, 0.0, 1.0)


def check_strength(strength: float) -> float:
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    return float(strength)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu, cuda or mps, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RddmError("device cuda asked for, but PyTorch sees no CUDA GPU")
    if device == "mps" and not torch.backends.mps.is_available():
        raise RddmError("device mps asked for, but this PyTorch has no MPS support")
    return torch.device(device)


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), where oneDNN's bf16
    convolutions run faster than float32 (on this project's AMX CPU a tile 2.5x, see the README's
    "bf16 on the CPU"); elsewhere they are emulated and slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


class RDDMPipeline:
    """Inference of the RDDM model. Build with :meth:`from_pretrained` (``rddm.model.registry``)."""

    def __init__(
        self,
        rvae: RawVAE,
        unet: UNet2DConditionModel,
        scheduler: DDPMScheduler,
        null_prompt: torch.Tensor,
        *,
        timestep: int = 999,
        adapters: tuple[str, ...] = (),
        info: dict | None = None,
    ):
        self.rvae = rvae.eval()
        self.unet = unet.eval()
        use_fast_inference(self.rvae, self.unet)  # inference on the CPU only; training keeps diffusers'
        self.scheduler = scheduler
        self.null_prompt = null_prompt
        self.timestep = int(timestep)
        self.adapters = tuple(adapters)
        self._active_adapter: tuple[str, bool] | None = None  # (name, merged)
        self._base_weights: list[torch.Tensor] | None = None  # kept while an adapter is merged
        self._workers: TileWorkers | None = None
        self._workers_lock = threading.Lock()
        self._decode_reach: tuple[int | None, ...] | None = None
        self.info = dict(info or {})
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    # -- loading and saving live in rddm.model.registry; thin wrappers keep the diffusers idiom.
    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> RDDMPipeline:
        from rddm.model.registry import load_pipeline

        return load_pipeline(name_or_path, **kwargs)

    def save_pretrained(self, folder) -> None:
        from rddm.model.registry import save_pipeline

        save_pipeline(self, folder)

    @property
    def tile_multiple(self) -> int:
        """Packed tile sizes and starts must be multiples of this: the latent's scale on the packed
        planes times the UNet's own downsampling. A tile starting on any other latent pixel puts the
        UNet's stride-2 convolutions on another grid than the whole image's, and its noise
        prediction differs everywhere in the tile, not only at the edges (with the shipped
        step-30600 weights, tiles of 256 packed px overlapping by 64 started on odd latent pixels
        and left kodim05 up to 1.77e-3 from the whole restore; 1.97e-4 on the aligned grid)."""
        return self.rvae.downscale // 2 * 2 ** getattr(self.unet, "num_upsamplers", 0)

    def to(self, device: str = "auto", dtype: torch.dtype | None = None) -> RDDMPipeline:
        """Move to a device; fp32 by default on the CPU (bf16 when asked, where the CPU has the
        instructions), fp16 by default on CUDA (bf16 when asked)."""
        self.unmerge_adapters()  # the kept weights stay where they were
        self.device = resolve_device(device) if isinstance(device, str) else device
        if dtype is None:
            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        if self.device.type == "cpu" and dtype != torch.float32:
            if dtype != torch.bfloat16:
                raise ValueError("the CPU runs in float32, or in bfloat16 where it has the instructions")
            if not cpu_has_bfloat16():
                raise ValueError(
                    "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX): bf16 runs slower than fp32"
                )
        for model in (self.rvae, self.unet):
            model.to(self.device)
            if dtype != self.dtype:  # torch's own cast: diffusers' warns even when nothing stays float32
                torch.nn.Module.to(model, dtype=dtype)
            # oneDNN's convolutions run 13% faster on a tile with channels-last weights (the
            # activations follow them): 1.01 s instead of 1.17 s per 256 px tile on one thread of
            # this 2-core CPU, outputs within ~1e-6 (`make tile-timing`). Not measured on CUDA, so
            # left as it is there.
            model.to(
                memory_format=torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
            )
        self.dtype = dtype
        self.null_prompt = self.null_prompt.to(self.device, dtype)
        return self

    # -- patterns and adapters
    def route_pattern(self, cfa_pattern: str) -> tuple[str, int, int]:
        """(pattern to run, rows, columns to add in front) for an image of ``cfa_pattern``.

        With the pattern's own adapter (or no adapters at all) nothing changes. Otherwise the
        mosaic is shifted by one row and/or column to a pattern the model has (canonicalisation;
        the row or column added is the image's second one mirrored, of the same colours):
        to an adapter's pattern, or, for a model without adapters trained on one pattern only
        (``canonical_pattern`` in its index, see ``rddm.train``), to that pattern.
        """
        pattern = check_pattern(cfa_pattern)
        if self.adapters:
            runs, known = set(self.adapters), ", ".join(self.adapters)
        elif self.info.get("canonical_pattern"):
            known = check_pattern(self.info["canonical_pattern"])
            runs = {adapter_name(known)}
        else:
            return pattern, 0, 0
        if adapter_name(pattern) in runs:
            return pattern, 0, 0
        for top, left in ((0, 1), (1, 0), (1, 1)):
            shifted = pattern_after_crop(pattern, top, left)
            if adapter_name(shifted) in runs:
                return shifted, top, left
        raise RddmError(f"model has no adapter for {pattern} (it has {known})")

    def activate_adapter(self, pattern: str, *, merged: bool = False) -> None:
        """Switch the UNet and RVAE to the adapter of ``pattern`` (a no-op when it is on already).

        ``merged`` (what a restore on the CPU uses): the adapter's low-rank update is added into the
        layers' own weights, so each LoRA layer runs one convolution instead of three (with
        ``rddm-tiny``'s rank-4 adapters the encoder and UNet of a 256 px tile take 0.136 s instead
        of 0.207 s on one thread of this 2-core CPU, outputs within 1.1e-6: ``make tile-timing``).
        The layers' own weights are kept aside and put back exactly before every merge, so a
        restore's numbers do not depend on what ran before it. Unmerged (training, and other
        devices) the adapter runs as peft's LoRA layers."""
        if not self.adapters:
            return
        name = adapter_name(pattern)
        if (name, merged) == self._active_adapter:
            return
        self.unmerge_adapters()
        if merged:
            layers = self._lora_layers()
            self._base_weights = [layer.get_base_layer().weight.detach().clone() for layer in layers]
            for layer in layers:
                layer.merge(adapter_names=[name])
        else:
            self.unet.set_adapter(name)
            self.rvae.set_adapter(name)
        self._active_adapter = (name, merged)

    def unmerge_adapters(self) -> None:
        """Put the layers' own weights back exactly (see :meth:`activate_adapter`); saving and
        training need them. A no-op when no adapter is merged."""
        if self._base_weights is None:
            return
        with torch.no_grad():
            for layer, weight in zip(self._lora_layers(), self._base_weights, strict=True):
                layer.unmerge()
                layer.get_base_layer().weight.copy_(weight)  # unmerging alone leaves rounding
        self._base_weights = None
        self._active_adapter = None

    def _lora_layers(self) -> list:
        return [
            m for model in (self.unet, self.rvae) for m in model.modules() if isinstance(m, BaseTunerLayer)
        ]

    def _inference_adapter(self, pattern: str) -> None:
        """The adapter of ``pattern`` for a restore: merged on the CPU (measured faster there), as
        LoRA layers elsewhere (not measured; merging would also keep a copy of the weights on the device)."""
        self.activate_adapter(pattern, merged=self.device.type == "cpu")

    # -- the model on one tile
    @torch.no_grad()
    def _encode_tile(self, planes: torch.Tensor, need_restored: bool):
        """The latent, the skip features and (when the restored end is needed) the UNet's x0
        prediction ``z_hq`` of one tile of packed planes."""
        latent, skip = self.rvae.encode(planes.to(self.dtype))
        z_hq = None
        if need_restored:
            alpha = self.scheduler.alphas_cumprod[self.timestep].to(latent.device, latent.dtype)
            prompt = self.null_prompt.expand(latent.shape[0], -1, -1)
            eps = self.unet(latent, self.timestep, encoder_hidden_states=prompt).sample
            z_hq = (latent - (1 - alpha).sqrt() * eps) / alpha.sqrt()
        return latent, skip, z_hq

    @torch.no_grad()
    def _decode_end(self, encoded, planes: torch.Tensor, pattern: str, end: int, window=None):
        """One strength end (0: fidelity, 1: restored) of an encoded tile."""
        latent, skip, z_hq = encoded
        return self.rvae.decode(z_hq if end else latent, skip, planes, pattern, window)

    def _run_tile(
        self,
        planes: torch.Tensor,
        pattern: str,
        need_fidelity: bool,
        need_restored: bool,
        window: tuple[tuple[int, int, int, int], ...] | None = None,
    ):
        """Both ends of one tile; with a ``window`` (the decode boxes of ``RawVAE.decode``, in
        packed pixels of the tile) only the last box's part of it, which is decoded in stages."""
        encoded = self._encode_tile(planes, need_restored)
        return tuple(
            self._decode_end(encoded, planes, pattern, end, window) if needed else None
            for end, needed in enumerate((need_fidelity, need_restored))
        )

    def _run_tiles(self, workers: TileWorkers, crops: list, pattern: str, need: tuple[bool, bool]) -> list:
        """``_run_tile`` for each ``(planes, window)`` of ``crops`` on the CPU workers: first every
        tile's encoder and UNet, then every decode, each end of each tile a job of its own and the
        largest first, so that tiles decoded in parts of different sizes (a region) still keep
        every core busy until the end."""
        encoded = workers.map(lambda crop: self._encode_tile(crop[0], need[1]), crops)

        def cost(job) -> int:
            planes, window = crops[job[0]]
            boxes = window or [(0, 0, *planes.shape[-2:])] * len(self.rvae.decode_cuts)
            return sum((bottom - top) * (right - left) for top, left, bottom, right in boxes)

        jobs = sorted(
            ((index, end) for index in range(len(crops)) for end in (0, 1) if need[end]),
            key=cost,
            reverse=True,
        )

        def decode(job):
            index, end = job
            planes, window = crops[index]
            return self._decode_end(encoded[index], planes, pattern, end, window)

        decoded = workers.map(decode, jobs)
        results = [[None, None] for _ in crops]
        for (index, end), output in zip(jobs, decoded, strict=True):
            results[index][end] = output
        return results

    def decode_reach(self, pattern: str = "RGGB") -> int | None:
        """How far (packed pixels) the decoder reads around an output pixel: a change of the
        latent, the skip features or the planes at one place changes no output farther away
        (None: no bound seen). See :meth:`decode_reaches`."""
        return self.decode_reaches(pattern)[0]

    @torch.no_grad()
    def decode_reaches(self, pattern: str = "RGGB") -> tuple[int | None, ...]:
        """Per cut of the decoder (``RawVAE.decode_cuts``: the latent, then each up block's
        input), how far (packed pixels) the rest of the decode reads around an output pixel: a
        change of its input, the skip features or the planes at one place changes no output
        farther away. Found once by probing (so it holds for any architecture); None where the
        probe saw no bound (a decoder with attention reads the whole tile).

        A region restore decodes each stage of a tile only within that stage's reach of the
        region: the outputs there are the whole tile's, so a preview still equals the full
        restore, and the finest stages, which cost the most, run on the least."""
        if self._decode_reach is None:
            rvae = self.rvae
            cuts = rvae.decode_cuts
            step = cuts[0]
            size = 33 * step  # packed pixels; the probe point in the middle
            middle = size // 2 // step * step
            generator = torch.Generator().manual_seed(0)
            planes = torch.rand(1, 4, size, size, generator=generator).to(self.device, self.dtype)
            latent, skip = rvae.encode(planes)
            reaches = []
            for cut, scale in enumerate(cuts):
                if cut == 0:
                    feature = latent
                else:
                    channels = rvae.decoder.up_blocks[cut].resnets[0].in_channels
                    shape = (1, channels, size // scale, size // scale)
                    feature = torch.randn(shape, generator=generator).to(self.device, self.dtype)
                inputs = {"sample": feature, "skip": skip, "planes": planes}
                if cut == 0:
                    parts = self._probe_reach(cut, inputs, middle, scale, pattern, inputs)
                else:  # the skip features and planes enter after the cut as they did after cut 0
                    parts = {**parts, **self._probe_reach(cut, inputs, middle, scale, pattern, ["sample"])}
                    if rvae.config.output_shuffle and rvae._half_index < cut:
                        parts.pop("skip", None)  # added before this cut
                values = list(parts.values())
                reaches.append(None if None in values else max(values, default=0))
            # A stage that reads everything makes every earlier one read everything too.
            for cut in range(len(reaches) - 1, 0, -1):
                if reaches[cut] is None:
                    reaches[:cut] = [None] * cut
            self._decode_reach = tuple(reaches)
        return self._decode_reach

    def _probe_reach(self, cut: int, inputs: dict, middle: int, scale: int, pattern: str, parts) -> dict:
        """The reach of the decode from ``cut`` through each of ``parts`` of its ``inputs``: nudge
        it at the packed point ``middle`` and see how far the output changes (None when the
        change reaches the probe's edges)."""
        base = self.rvae._decode_from(cut, **inputs, cfa_pattern=pattern)
        size = inputs["planes"].shape[-1]
        reaches = {}
        for part in parts:
            tensor = inputs[part]
            if tensor is None:
                continue
            part_scale = scale if part == "sample" else 1
            at = middle // part_scale
            nudged = tensor.clone()
            nudged[..., at, at] += 0.25
            output = self.rvae._decode_from(cut, **{**inputs, part: nudged}, cfa_pattern=pattern)
            changed = (output != base)[0]
            rows = torch.nonzero(changed.any(dim=0).any(dim=1)).flatten()
            cols = torch.nonzero(changed.any(dim=0).any(dim=0)).flatten()
            if len(rows) == 0:
                continue
            if min(rows.min(), cols.min()) == 0 or max(rows.max(), cols.max()) == 2 * size - 1:
                reaches[part] = None
                continue
            centre = 2 * middle + part_scale  # full-resolution pixels
            far = int(max(centre - rows.min(), rows.max() - centre, centre - cols.min(), cols.max() - centre))
            reaches[part] = (far + 1) // 2 + 1
        return reaches

    def _packed_size(self, shape: tuple[int, int]) -> tuple[int, int]:
        """Rows and columns of the packed planes of a ``shape`` mosaic padded to the tile multiple."""
        packed = [(size + 1) // 2 for size in shape]
        return tuple(size + (-size) % self.tile_multiple for size in packed)

    def _area_planes(self, cfa: np.ndarray, pattern: str, wb_gains, area, added=(0, 0)) -> torch.Tensor:
        """``(4, bottom - top, right - left)`` white-balanced packed planes of the packed ``area``
        ``(top, left, bottom, right)`` of the image padded to the tile multiple, which mirrors the
        last rows and columns (repeats them in an image too small to mirror). Only the area is packed.
        ``added`` rows and columns go in front first (row -1 mirrors row 1: see ``route_pattern``)."""
        add_rows, add_cols = added
        shape = (cfa.shape[0] + add_rows, cfa.shape[1] + add_cols)
        height, width = (shape[0] + 1) // 2, (shape[1] + 1) // 2
        padded_height, padded_width = self._packed_size(shape)
        repeat = min(height, width) <= max(padded_height - height, padded_width - width)
        top, left, bottom, right = area
        rows = _past_the_end(np.arange(top, bottom), height, repeat)
        cols = _past_the_end(np.arange(left, right), width, repeat)
        # An odd mosaic packs as if mirrored by one row/column, which keeps the CFA colour.
        planes = [
            cfa[
                np.ix_(
                    np.abs(_past_the_end(2 * rows + row, shape[0]) - add_rows),
                    np.abs(_past_the_end(2 * cols + col, shape[1]) - add_cols),
                )
            ]
            for row, col in plane_offsets(pattern)
        ]
        return torch.from_numpy(balance_planes(np.stack(planes).astype(np.float32, copy=False), wb_gains))

    def restore_ends(
        self,
        raw: RawImage,
        *,
        roi: tuple[int, int, int, int] | None = None,
        tile_size: int = TILE_SIZE,
        tile_overlap: int = TILE_OVERLAP,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        device_lock: contextlib.AbstractContextManager | None = None,
    ) -> Ends:
        """Both strength ends for the whole image or for ``roi = (x, y, width, height)``.

        Coordinates are full-resolution pixels of the stored (not rotated) mosaic. ``tile_size``
        and ``tile_overlap`` are in packed pixels (2 full-resolution pixels each). ``device_lock``
        is held for each tile's model run (a service shares one device between callers).
        """
        fidelity, restored = self._restore(
            raw, roi, tile_size, tile_overlap, None, progress, cancel, device_lock
        )
        return Ends(fidelity=fidelity, restored=restored)

    def _restore(
        self, raw, roi, tile_size, tile_overlap, mix, progress, cancel, device_lock=None
    ) -> list[np.ndarray]:
        """[fidelity, restored] regions, or [blend] when ``mix`` is a strength (one buffer, less memory)."""
        pattern, add_rows, add_cols = self.route_pattern(raw.cfa_pattern)
        full_height, full_width = raw.cfa.shape
        x, y, roi_width, roi_height = roi if roi is not None else (0, 0, full_width, full_height)
        if roi_width <= 0 or roi_height <= 0 or x < 0 or y < 0:
            raise ValueError(f"region {roi} is empty or outside the image")
        if x + roi_width > full_width or y + roi_height > full_height:
            raise ValueError(f"region {roi} reaches outside the {full_width}x{full_height} image")
        multiple = self.tile_multiple
        if tile_size % multiple or tile_overlap % multiple:
            raise ValueError(f"tile size and overlap must be multiples of {multiple} packed pixels")
        # The shifted mosaic is never built: the area's planes index the image's own (no copy of it).
        padded_height, padded_width = self._packed_size((full_height + add_rows, full_width + add_cols))
        grid = tile_grid(padded_height, padded_width, tile_size, tile_overlap, multiple)
        # The packed region needed, in the shifted mosaic's coordinates (packed pixel r gives the
        # full-resolution rows 2r and 2r + 1; no margin, which could touch another row of tiles).
        top, left = (y + add_rows) // 2, (x + add_cols) // 2
        bottom = min(padded_height, (y + roi_height + add_rows + 1) // 2)
        right = min(padded_width, (x + roi_width + add_cols + 1) // 2)
        tiles = tiles_touching(grid, top, left, bottom, right)
        area = (
            min(t.top for t in tiles),
            min(t.left for t in tiles),
            max(t.top + t.height for t in tiles),
            max(t.left + t.width for t in tiles),
        )
        sums = self._blend_tiles(
            self._area_planes(raw.cfa, pattern, raw.wb_gains, area, (add_rows, add_cols)),
            pattern,
            tiles,
            area,
            (top, left, bottom, right),
            (padded_height, padded_width),
            tile_overlap,
            mix,
            progress,
            cancel,
            device_lock or contextlib.nullcontext(),
            whole=(x, y, roi_width, roi_height) == (0, 0, full_width, full_height),
        )
        return self._crop_to_roi(sums, area, raw, (add_rows, add_cols), (x, y, roi_width, roi_height))

    def _windows(self, tiles: list[Tile], region, padded_size, overlap, pattern, lock) -> list:
        """Per tile, the decode boxes for the packed ``region`` (see ``RawVAE.decode``; None: the
        whole tile), or False for a tile whose blending weight is zero all over the region (it
        need not run at all)."""
        top, left, bottom, right = region
        if (top, left) == (0, 0) and (bottom, right) == tuple(padded_size):
            return [None] * len(tiles)
        with lock:  # the probe runs the decoder (once per pipeline)
            self._inference_adapter(pattern)
            reaches = self.decode_reaches(pattern)
        cuts = self.rvae.decode_cuts
        windows = []
        for tile in tiles:
            weight = feather(tile, *padded_size, overlap)
            inside = weight[
                2 * max(0, top - tile.top) : 2 * (min(bottom, tile.bottom) - tile.top),
                2 * max(0, left - tile.left) : 2 * (min(right, tile.right) - tile.left),
            ]
            if inside.numel() == 0 or float(inside.max()) == 0.0:
                windows.append(False)
                continue
            need = (top - tile.top, left - tile.left, bottom - tile.top, right - tile.left)
            boxes = []
            for reach, scale in reversed(list(zip(reaches, cuts, strict=True))):
                if reach is None:
                    box = (0, 0, tile.height, tile.width)
                else:  # the need and its reach, out to the cut's grid, within the tile
                    box = (
                        max(0, (need[0] - reach) // scale * scale),
                        max(0, (need[1] - reach) // scale * scale),
                        min(tile.height, -(-(need[2] + reach) // scale) * scale),
                        min(tile.width, -(-(need[3] + reach) // scale) * scale),
                    )
                if boxes:  # and around the next stage's box
                    inner = boxes[0]
                    box = (
                        min(box[0], inner[0] // scale * scale),
                        min(box[1], inner[1] // scale * scale),
                        max(box[2], min(tile.height, -(-inner[2] // scale) * scale)),
                        max(box[3], min(tile.width, -(-inner[3] // scale) * scale)),
                    )
                boxes.insert(0, box)
            whole = all(box == (0, 0, tile.height, tile.width) for box in boxes)
            windows.append(None if whole else tuple(boxes))
        return windows

    def _blend_tiles(
        self,
        planes,
        pattern,
        tiles: list[Tile],
        area,
        region,
        padded_size,
        overlap,
        mix,
        progress,
        cancel,
        lock,
        whole: bool = True,
    ):
        """Feather-blend the tiles' outputs over the packed ``area``, whose ``planes`` are given, of
        an image of ``padded_size`` packed pixels; only the packed ``region`` of it is exact (a
        region restore decodes the tiles' parts near it, see :meth:`decode_reach`). ``whole``: the
        whole image is restored (its tiles run in waves of one per worker, see ``REGION_WAVE``)."""
        windows = self._windows(tiles, region, padded_size, overlap, pattern, lock)
        jobs = [(tile, window) for tile, window in zip(tiles, windows, strict=True) if window is not False]
        area_top, area_left, area_bottom, area_right = area
        shape = (3, 2 * (area_bottom - area_top), 2 * (area_right - area_left))
        need = (True, True) if mix is None else (mix < 1.0, mix > 0.0)
        sums = [torch.zeros(shape) for _ in range(2 if mix is None else 1)]
        weights = torch.zeros(shape[1:])
        workers = self._tile_workers()
        wave = 1
        if workers is not None:  # a region's tiles in one wave: no worker waits at a wave's end
            wave = workers.count if whole else max(workers.count, REGION_WAVE)
        for start in range(0, len(jobs), wave):
            if cancel is not None and cancel.is_set():
                raise Cancelled("restore cancelled")
            batch = jobs[start : start + wave]
            crops = []
            for tile, window in batch:
                top, left = tile.top - area_top, tile.left - area_left
                crop = planes[None, :, top : top + tile.height, left : left + tile.width]
                # float32 planes: the decoder adds its output to their bilinear demosaic, which
                # bf16 (8-bit mantissa) or fp16 would quantise; the encoder casts its own copy.
                crops.append((crop.to(self.device), window))
            with lock:  # another caller may have switched the adapter between our tiles
                self._inference_adapter(pattern)
                if workers is None:
                    results = [self._run_tile(crops[0][0], pattern, *need, crops[0][1])]
                else:
                    results = self._run_tiles(workers, crops, pattern, need)
            for index, ((tile, window), (fidelity, restored)) in enumerate(
                zip(batch, results, strict=True), start
            ):
                if mix is None:
                    outputs = [fidelity, restored]
                elif fidelity is None or restored is None:
                    outputs = [fidelity if restored is None else restored]
                else:
                    outputs = [(1.0 - mix) * fidelity + mix * restored]
                top, left, bottom, right = window[-1] if window else (0, 0, tile.height, tile.width)
                weight = feather(tile, *padded_size, overlap)[2 * top : 2 * bottom, 2 * left : 2 * right]
                rows = slice(2 * (tile.top + top - area_top), 2 * (tile.top + bottom - area_top))
                cols = slice(2 * (tile.left + left - area_left), 2 * (tile.left + right - area_left))
                for total, output in zip(sums, outputs, strict=True):
                    total[:, rows, cols] += output[0].float().cpu() * weight
                weights[rows, cols] += weight
                if progress is not None:
                    progress(index + 1, len(jobs))
        for total in sums:  # (outside the region some pixels may have no tile: 0 there, not NaN)
            total /= weights.clamp_min(1e-12)
        return [total.permute(1, 2, 0).numpy() for total in sums]

    def _tile_workers(self) -> TileWorkers | None:
        """On a CPU with several threads, one worker per thread runs tiles side by side (see
        :mod:`rddm.model.workers`); None runs them one after another."""
        if self.device.type != "cpu" or torch.get_num_threads() < 2:
            return None
        with self._workers_lock:
            if self._workers is None:
                self._workers = TileWorkers(torch.get_num_threads())
        return self._workers

    def _crop_to_roi(self, images, area, raw: RawImage, added, roi) -> list[np.ndarray]:
        add_rows, add_cols = added
        x, y, roi_width, roi_height = roi
        # Output pixel (row, col) of the area is mosaic pixel (2*area_top + row - add_rows, ...).
        row0 = y + add_rows - 2 * area[0]
        col0 = x + add_cols - 2 * area[1]
        clipped = _clipped_mask(raw.cfa, roi)
        cropped = []
        for image in images:
            # Ends stay unclipped: clipping each end and then blending is not the clipped blend.
            region = image[row0 : row0 + roi_height, col0 : col0 + roi_width].copy()
            if len(images) == 1:
                np.clip(region, 0.0, 1.0, out=region)
            region[clipped] = 1.0
            cropped.append(region)
        return cropped

    def __call__(
        self,
        raw: RawImage,
        strength: float = 0.5,
        *,
        roi: tuple[int, int, int, int] | None = None,
        tile_size: int = TILE_SIZE,
        tile_overlap: int = TILE_OVERLAP,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        device_lock: contextlib.AbstractContextManager | None = None,
    ) -> np.ndarray:
        """Restore ``raw`` at ``strength`` in [0, 1]: ``(H, W, 3)`` float32 white-balanced linear
        camera RGB in [0, 1] (or the ``roi`` region of it). Deterministic: no noise is sampled."""
        strength = check_strength(strength)
        return self._restore(raw, roi, tile_size, tile_overlap, strength, progress, cancel, device_lock)[0]


def _clipped_mask(cfa: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Mask of the ``roi = (x, y, width, height)`` pixels whose 2x2 Bayer block (of the stored
    mosaic, mirrored past an odd edge as packing does) is saturated in every channel."""
    x, y, width, height = roi
    rows = _past_the_end(np.arange(y - y % 2, y + height + (y + height) % 2), cfa.shape[0])
    cols = _past_the_end(np.arange(x - x % 2, x + width + (x + width) % 2), cfa.shape[1])
    blocks = cfa[np.ix_(rows, cols)].reshape(len(rows) // 2, 2, len(cols) // 2, 2)
    saturated = blocks.min(axis=(1, 3)) >= CLIPPED
    mask = np.repeat(np.repeat(saturated, 2, axis=0), 2, axis=1)
    return mask[y % 2 : y % 2 + height, x % 2 : x % 2 + width]


def _past_the_end(indices: np.ndarray, length: int, repeat: bool = False) -> np.ndarray:
    """Indices into an axis of ``length``, those past its end mirrored back (``length`` reads
    ``length - 2``) or, with ``repeat``, all at the last one."""
    if repeat:
        return np.minimum(indices, length - 1)
    return np.where(indices < length, indices, 2 * (length - 1) - indices)


__all__ = ["Cancelled", "Ends", "RDDMPipeline", "check_strength", "cpu_has_bfloat16", "resolve_device"]
