"""The RAW-domain VAE (RVAE): packed Bayer planes in, enhanced linear camera RGB out.

Built from diffusers' ``Encoder``/``Decoder`` with the module names of Stable Diffusion's
``AutoencoderKL`` (``encoder``, ``quant_conv``, ``post_quant_conv``, ``decoder``), so SD 2.1's VAE
weights load into it. Two changes make it a RAW model:

- the encoder takes the 4 packed planes (half resolution) and its *first* block does not
  downsample, so the latent keeps SD's scale relative to the full image (1/8 for SD sizes);
- the decoder outputs white-balanced linear camera RGB at full resolution.

``output_shuffle`` (the CPU-sized model) instead keeps every block's downsampling and ends the
decoder at half resolution with 12 channels that a pixel shuffle turns into full-resolution RGB:
no convolution ever runs at full resolution, which is most of the cost saved.

With ``norm_free`` every GroupNorm keeps only its per-channel scale and shift (see
``rddm.model.norm``); without it, ``pixel_norm`` takes GroupNorm's statistics per pixel.

With ``refine_blocks`` (N > 0) the decoder ends with N more residual blocks at the resolution of
its last block (half resolution with ``output_shuffle``), before its output convolution: capacity
where a mosaic's detail is rebuilt. A model grown from a trained one (``rddm train``'s
``model.grow``) starts them with zeroed second convolutions, i.e. as the identity, so the grown
model restores exactly as the old one until it trains.

With ``skip_connections`` the decoder also receives the encoder's first features (half
resolution, after ``conv_in``) through zero-initialised 1x1 convolutions: a 4-channel latent at
1/8 scale cannot carry a mosaic's pixel-level detail, the skip can.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.autoencoders.vae import Decoder, Encoder
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from rddm.model.norm import use_norm
from rddm.raw.cfa import plane_offsets


class RawEncoder(Encoder):
    """diffusers' Encoder that also returns the features of its first block (the skip)."""

    def forward(self, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.conv_in(sample)
        skip = sample
        for down_block in self.down_blocks:
            sample = down_block(sample)
        sample = self.mid_block(sample)
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        return sample, skip


_BILINEAR_RB = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4
_BILINEAR_G = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4


def bilinear_demosaic(planes: torch.Tensor, cfa_pattern: str) -> torch.Tensor:
    """``(B, 4, h, w)`` R, Gr, Gb, B planes of ``cfa_pattern`` -> ``(B, 3, 2h, 2w)`` RGB by bilinear
    demosaicking: every sample back at its own position in the mosaic, the gaps interpolated."""
    batch, _, height, width = planes.shape
    sparse = planes.new_zeros(batch, 3, 2 * height, 2 * width)
    for index, (row, col) in enumerate(plane_offsets(cfa_pattern)):
        sparse[:, (0, 1, 1, 2)[index], row::2, col::2] = planes[:, index]
    kernels = torch.stack([_BILINEAR_RB, _BILINEAR_G, _BILINEAR_RB])[:, None].to(planes)
    return F.conv2d(F.pad(sparse, (1, 1, 1, 1), mode="reflect"), kernels, groups=3)


class RawVAE(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """RVAE. Encode ``(B, 4, H/2, W/2)`` packed planes in [0, 1] to ``(B, L, H/f, W/f)`` latents
    (``f`` = :attr:`downscale`); decode them to ``(B, 3, H, W)`` linear RGB. H and W must be
    multiples of ``f``.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 3,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        latent_channels: int = 4,
        norm_num_groups: int = 8,
        mid_block_add_attention: bool = False,
        pixel_norm: bool = True,
        skip_connections: bool = True,
        output_shuffle: bool = True,
        input_residual: bool = False,
        scaling_factor: float = 1.0,
        norm_free: bool = False,
        refine_blocks: int = 0,
    ):
        super().__init__()
        count = len(block_out_channels)
        if count < 2:
            raise ValueError("the RVAE needs at least two blocks (one upsampling step)")
        common = {
            "block_out_channels": tuple(block_out_channels),
            "layers_per_block": layers_per_block,
            "norm_num_groups": norm_num_groups,
            "mid_block_add_attention": mid_block_add_attention,
        }
        self.encoder = RawEncoder(
            in_channels=in_channels,
            out_channels=latent_channels,
            down_block_types=("DownEncoderBlock2D",) * count,
            double_z=True,
            **common,
        )
        if not output_shuffle:
            # Packed planes are already at half resolution: the first block keeps it.
            self.encoder.down_blocks[0].downsamplers = None
        self.decoder = Decoder(
            in_channels=latent_channels,
            out_channels=out_channels * (4 if output_shuffle else 1),
            up_block_types=("UpDecoderBlock2D",) * count,
            **common,
        )
        if refine_blocks < 0:
            raise ValueError("refine_blocks must be 0 or more")
        width = block_out_channels[0]
        self.refine = nn.ModuleList(
            ResnetBlock2D(in_channels=width, out_channels=width, temb_channels=None, groups=norm_num_groups)
            for _ in range(refine_blocks)
        )
        self.quant_conv = nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        if skip_connections:
            # Decoder block j's input has the channels of block j-1's output (block 0: of conv_in).
            inputs = [block_out_channels[-1], *reversed(block_out_channels)]
            self.skip_half = nn.Conv2d(block_out_channels[0], inputs[self._half_index], 1)
            projections = [self.skip_half]
            if not output_shuffle:
                self.skip_full = nn.Conv2d(block_out_channels[0], 4 * inputs[count - 1], 1)
                projections.append(self.skip_full)
            for conv in projections:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        use_norm(self, "none" if norm_free else "pixel" if pixel_norm else "group")

    @property
    def norm_kind(self) -> str:
        """The normalisation of this model's blocks (and its UNet's): ``none``, ``pixel``, ``group``."""
        if self.config.norm_free:
            return "none"
        return "pixel" if self.config.pixel_norm else "group"

    @property
    def _half_index(self) -> int:
        """The decoder block whose input is at half (packed) resolution."""
        count = len(self.config.block_out_channels)
        return count - 1 if self.config.output_shuffle else count - 2

    @property
    def downscale(self) -> int:
        """Full-resolution pixels per latent pixel along each axis."""
        count = len(self.config.block_out_channels)
        return 2 ** (count if self.config.output_shuffle else count - 1)

    def encode(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, 4, H/2, W/2)`` -> scaled latent ``(B, L, H/f, W/f)`` and the skip features."""
        moments, skip = self.encoder(packed)
        mean = self.quant_conv(moments).chunk(2, dim=1)[0]
        return mean * self.config.scaling_factor, skip if self.config.skip_connections else None

    @property
    def decode_cuts(self) -> list[int]:
        """Packed pixels per pixel of the places a decode may be cropped (see :meth:`decode`):
        cut 0 is the latent (before ``conv_in`` and the mid block), cut ``k > 0`` the input of
        up block ``k``; only blocks whose input is at packed resolution or coarser."""
        scale = self.downscale // 2
        cuts = []
        for _ in self.decoder.up_blocks:
            if scale < 1:
                break
            cuts.append(scale)
            scale //= 2
        return cuts

    def decode(
        self,
        latent: torch.Tensor,
        skip: torch.Tensor | None = None,
        planes: torch.Tensor | None = None,
        cfa_pattern: str | None = None,
        boxes: list[tuple[int, int, int, int]] | None = None,
    ) -> torch.Tensor:
        """Scaled latent (and skip features) -> ``(B, 3, H, W)`` linear camera RGB.

        With ``input_residual`` the decoder predicts a correction to the bilinear demosaic of the
        input ``planes`` (their ``cfa_pattern`` places each sample), which a model trained from
        scratch learns far faster than the whole image, and which keeps the decoder's task the
        same for every Bayer pattern.

        ``boxes`` (a region decode): one ``(top, left, bottom, right)`` in packed pixels of the
        inputs per cut of :attr:`decode_cuts`, nested, each a multiple of its cut's scale. Each
        stage then runs only on its box, and the output is the last box's (at full resolution).
        A box wide enough around a part of the output (see ``RDDMPipeline.decode_reaches``) leaves
        that part exactly as the whole decode has it, for a fraction of the work: the finest
        stages, the costly ones, need the smallest margins.
        """
        return self._decode_from(0, latent, skip, planes, cfa_pattern, boxes)

    def _decode_from(self, first, sample, skip, planes, cfa_pattern, boxes=None) -> torch.Tensor:
        """Decode from cut ``first``: the latent for 0, else the input of up block ``first``."""
        decoder = self.decoder
        cuts = self.decode_cuts
        count = len(decoder.up_blocks)
        if boxes is not None and len(boxes) != len(cuts):
            raise ValueError(f"need {len(cuts)} decode boxes, got {len(boxes)}")
        # The packed pixels the current feature map covers, and the skip features'.
        scale = cuts[first] if first < len(cuts) else 1
        box = (0, 0, sample.shape[-2] * scale, sample.shape[-1] * scale)
        for index in range(first, count):
            if boxes is not None and index < len(cuts):
                sample = _crop(sample, boxes[index], box[:2], cuts[index])
                skip = _crop(skip, boxes[index], box[:2], 1) if skip is not None else None
                box = boxes[index]
            if index == 0:
                sample = self.post_quant_conv(sample / self.config.scaling_factor)
                sample = decoder.mid_block(decoder.conv_in(sample), None)
            if skip is not None and index == self._half_index:
                sample = sample + self.skip_half(skip)
            if skip is not None and not self.config.output_shuffle and index == count - 1:
                sample = sample + F.pixel_shuffle(self.skip_full(skip), 2)
            sample = decoder.up_blocks[index](sample, None)
        for block in self.refine:
            sample = block(sample, None)
        rgb = decoder.conv_out(decoder.conv_act(decoder.conv_norm_out(sample)))
        rgb = F.pixel_shuffle(rgb, 2) if self.config.output_shuffle else rgb
        if self.config.input_residual:
            if planes is None or cfa_pattern is None:
                raise ValueError("this RVAE decodes a correction of its input: pass planes and pattern")
            if boxes is not None:
                planes = _crop(planes, box, (0, 0), 1)
            rgb = rgb + bilinear_demosaic(planes, cfa_pattern)
        return rgb

    def forward(self, packed: torch.Tensor, cfa_pattern: str = "RGGB") -> torch.Tensor:
        latent, skip = self.encode(packed)
        return self.decode(latent, skip, packed, cfa_pattern)


def _crop(sample: torch.Tensor, box, origin, scale: int) -> torch.Tensor:
    """The ``box`` (packed pixels) of ``sample``, a feature map at ``scale`` packed pixels per
    pixel whose first pixel is at packed ``origin``."""
    top, left, bottom, right = (value - origin[index % 2] for index, value in enumerate(box))
    if any(value % scale for value in (top, left, bottom, right)):
        raise ValueError(f"decode box {box} is not on the {scale}-pixel grid")
    return sample[..., top // scale : bottom // scale, left // scale : right // scale]
