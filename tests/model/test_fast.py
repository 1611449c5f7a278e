"""The CPU inference forwards of rddm.model.fast against diffusers' own, block by block and whole."""

from __future__ import annotations

from importlib.resources import files

import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D, Upsample2D

from rddm.model.fast import diffusers_forward, phase_kernels, plain_conv, use_fast_inference
from rddm.model.norm import use_norm
from rddm.model.padding import use_padding
from rddm.model.registry import load_pipeline
from rddm.raw import read_raw
from tests.conftest import random_raw


def _block(kind: str, mode: str, norm: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    block = ResnetBlock2D(groups=1, **options) if kind == "resnet" else Upsample2D(use_conv=True, **options)
    use_norm(block, norm)
    with torch.no_grad():  # norms away from 1 / 0, so that skipping one would show
        for name, parameter in block.named_parameters():
            if name.startswith("norm"):
                parameter.add_(torch.randn_like(parameter) * 0.3)
    use_padding(mode, block)
    block.eval()
    use_fast_inference(block)
    return block


def _both(block, *inputs, **kwargs):
    with torch.no_grad():
        fast = block(*inputs, **kwargs)
        with diffusers_forward():
            reference = block(*inputs, **kwargs)
    return fast, reference


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("mode", ["replicate", "zeros"])
@pytest.mark.parametrize("norm", ["none", "pixel"])
@pytest.mark.parametrize(
    "options",
    [
        {"in_channels": 8, "temb_channels": None},
        {"in_channels": 8, "out_channels": 12, "temb_channels": None, "time_embedding_norm": "group"},
        {"in_channels": 8, "out_channels": 6, "temb_channels": 16},
    ],
    ids=["same-width", "shortcut-vae", "shortcut-temb"],
)
def test_residual_blocks_give_diffusers_outputs(layout, mode, norm, options):
    """The padded buffer holds what F.pad made: the same convolutions on the same values, up to
    rounding (torch's vector and scalar SiLU loops round apart, and oneDNN may sum a buffer of
    another layout than F.pad's output in another order)."""
    block = _block("resnet", mode, norm, **options).to(memory_format=layout)
    sample = torch.randn(2, 8, 13, 17).contiguous(memory_format=layout)
    temb = torch.randn(2, 16) if options["temb_channels"] else None
    fast, reference = _both(block, sample, temb)
    assert fast.shape == reference.shape
    assert (fast - reference).abs().max() <= 1e-6 * reference.abs().max()


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("mode", ["replicate", "zeros"])
def test_upsamplers_give_diffusers_outputs_to_float_rounding(layout, mode):
    block = _block("upsample", mode, "none", channels=8, out_channels=5).to(memory_format=layout)
    sample = torch.randn(2, 8, 11, 14).contiguous(memory_format=layout) * 3
    fast, reference = _both(block, sample)
    assert fast.shape == reference.shape == (2, 5, 22, 28)
    assert (fast - reference).abs().max() < 1e-5
    with torch.no_grad():  # an explicit output size of twice the input is the same upsampling
        assert torch.equal(block(sample, (22, 28)), fast)


def test_phase_kernels_sum_the_taps_each_phase_reads():
    weight = torch.arange(9.0).reshape(1, 1, 3, 3)
    kernels = [kernel[0, 0].tolist() for kernel in phase_kernels(weight)]
    # rows: phase 0 reads (tap 0, taps 1 + 2), phase 1 (taps 0 + 1, tap 2); columns alike
    assert kernels[0] == [[0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]]
    assert kernels[3] == [[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8]]


def test_training_and_recorded_gradients_take_diffusers_path():
    block = _block("resnet", "replicate", "none", in_channels=4, temb_channels=None)
    sample = torch.randn(1, 4, 9, 9, requires_grad=True)
    output = block(sample)  # autograd records: diffusers' forward, which F.pad's backward supports
    output.sum().backward()
    assert sample.grad is not None and sample.grad.abs().sum() > 0
    block.train()
    with torch.no_grad():
        with diffusers_forward():
            reference = block(sample)
        assert torch.equal(block(sample), reference)


def test_unsupported_convolutions_are_left_to_diffusers():
    reflect = torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
    strided = torch.nn.Conv2d(4, 4, 3, padding=1, stride=2)
    wide = torch.nn.Conv2d(4, 4, 5, padding=2)
    assert plain_conv(reflect) is None and plain_conv(strided) is None and plain_conv(wide) is None
    plain = torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="replicate")
    assert plain_conv(plain) is plain
    block = _block("resnet", "reflect", "none", in_channels=4, temb_channels=None)
    fast, reference = _both(block, torch.randn(1, 4, 9, 9))
    assert torch.equal(fast, reference)


def test_lora_layers_run_fast_only_when_merged(tiny_model_dir):
    """An active, unmerged adapter runs beside its layer (diffusers' path); merged (a restore on
    the CPU) its base layer holds the update and the fast path runs it."""
    pipeline = load_pipeline(tiny_model_dir)
    block = pipeline.unet.down_blocks[0].resnets[0]
    lora = block.conv1
    pipeline.activate_adapter("RGGB")
    assert lora.active_adapters and not lora.merged and plain_conv(lora) is None
    sample = torch.randn(1, block.in_channels, 16, 16)
    temb = torch.randn(1, block.time_emb_proj.in_features)
    unmerged, reference = _both(block, sample, temb)
    assert torch.equal(unmerged, reference)
    pipeline.activate_adapter("RGGB", merged=True)
    assert plain_conv(lora) is lora.get_base_layer()
    merged, _ = _both(block, sample, temb)
    assert (merged - unmerged).abs().max() < 1e-5
    lora.enable_adapters(False)  # peft unmerges before it runs the layer alone: left to peft
    assert plain_conv(lora) is None
    lora.enable_adapters(True)
    pipeline.unmerge_adapters()


def test_a_restore_is_the_diffusers_restore_to_float_rounding(tiny_pipeline):
    raw = random_raw(96, 128, "GRBG")
    fast = tiny_pipeline.restore_ends(raw, tile_size=32, tile_overlap=8)
    with diffusers_forward():
        reference = tiny_pipeline.restore_ends(raw, tile_size=32, tile_overlap=8)
    for ours, theirs in ((fast.fidelity, reference.fidelity), (fast.restored, reference.restored)):
        assert abs(ours - theirs).max() < 1e-5


def test_the_shipped_model_restores_a_real_raw_as_diffusers_does():
    """The shipped weights on the bundled DNG's region: within float rounding of diffusers' blocks."""
    raw = read_raw(str(files("rddm") / "data" / "sample.dng"))
    pipeline = load_pipeline("rddm-tiny").to("cpu")
    roi = (64, 32, 192, 160)
    fast = pipeline.restore_ends(raw, roi=roi)
    with diffusers_forward():
        reference = pipeline.restore_ends(raw, roi=roi)
    assert abs(fast.fidelity - reference.fidelity).max() < 2e-5
    assert abs(fast.restored - reference.restored).max() < 2e-5
