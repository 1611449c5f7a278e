"""The tiled one-step pipeline: shapes, adapters, tiling, ROI, strength, highlights, cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from rddm.errors import RddmError
from rddm.model import Cancelled, RDDMPipeline
from rddm.model.lora import base_weights
from rddm.model.norm import AffineNorm, PixelGroupNorm, use_norm
from rddm.model.registry import load_pipeline
from rddm.raw import CFA_PATTERNS
from tests.conftest import pad_modes, random_raw, random_tiny


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("size", [(64, 96), (67, 93), (40, 40)])
def test_output_shape_dtype_and_range_for_all_patterns(tiny_pipeline, pattern, size):
    out = tiny_pipeline(random_raw(*size, pattern=pattern), 0.5, tile_size=32, tile_overlap=8)
    assert out.shape == (*size, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_adapters_differ_per_pattern_and_switch_back(tiny_pipeline):
    raw = random_raw(64, 64, "RGGB")
    outputs = {}
    for pattern in ("RGGB", "BGGR", "RGGB"):
        raw.cfa_pattern = pattern
        outputs.setdefault(pattern, []).append(tiny_pipeline(raw, 1.0, tile_size=64, tile_overlap=0))
    assert np.abs(outputs["RGGB"][0] - outputs["BGGR"][0]).max() > 1e-3
    np.testing.assert_array_equal(outputs["RGGB"][0], outputs["RGGB"][1])


def test_tiles_blend_towards_the_whole_image(tiny_pipeline):
    """Random weights see far (no training to make distant pixels unimportant): the feathered
    tiles still agree with the whole-image result far better than unblended tiles would, and the
    agreement improves with overlap. The 1e-3 bound is checked on the trained model."""
    raw = random_raw(192, 256)
    whole = tiny_pipeline(raw, 0.5, tile_size=128, tile_overlap=0)
    errors = [
        np.abs(tiny_pipeline(raw, 0.5, tile_size=64, tile_overlap=overlap) - whole).max()
        for overlap in (0, 8, 32, 48)
    ]
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[1] < 0.2 * errors[0]


def test_roi_is_the_same_region_of_the_full_restore(tiny_pipeline):
    """The same pixels up to float rounding: a region decodes each stage on a crop of the tile
    (see test_region_decodes_each_stage_only_within_its_reach), and a convolution over a
    narrower map may sum in another order (~1e-7 seen). A stage cropped too close to the region
    would differ by orders of magnitude more: random weights read far."""
    raw = random_raw(130, 170, "GBRG")
    full = tiny_pipeline(raw, 0.7, tile_size=32, tile_overlap=8)
    for roi in [(0, 0, 40, 30), (33, 17, 64, 80), (101, 99, 69, 31), (0, 0, 170, 130), (1, 1, 3, 3)]:
        x, y, w, h = roi
        region = tiny_pipeline(raw, 0.7, roi=roi, tile_size=32, tile_overlap=8)
        np.testing.assert_allclose(region, full[y : y + h, x : x + w], rtol=0, atol=1e-6)


def test_region_decodes_each_stage_only_within_its_reach(tiny_pipeline):
    """Each decoder stage of a region restore runs on the tile's part within that stage's probed
    reach of the region: the finer the stage, the smaller its part; with the last stage cropped
    to 1 packed pixel around the region (its four 3x3 convolutions and conv_out read 5), the
    region is no longer the full restore's, so the crops are real."""
    reaches = tiny_pipeline.decode_reaches("RGGB")
    cuts = tiny_pipeline.rvae.decode_cuts
    assert cuts == [4, 2, 1] and reaches[0] == tiny_pipeline.decode_reach("RGGB") == 55
    assert reaches[0] > reaches[1] > reaches[2] > 0
    raw = random_raw(400, 400)
    full = tiny_pipeline.restore_ends(raw, tile_size=128, tile_overlap=32)
    roi = (180, 170, 40, 30)
    region = tiny_pipeline.restore_ends(raw, roi=roi, tile_size=128, tile_overlap=32)
    x, y, w, h = roi
    np.testing.assert_allclose(region.restored, full.restored[y : y + h, x : x + w], rtol=0, atol=1e-6)
    decode = tiny_pipeline.rvae.decode
    boxes = []

    def spy(*args, **kwargs):
        boxes.append(args[4] if len(args) > 4 else kwargs.get("boxes"))
        return decode(*args, **kwargs)

    tiny_pipeline.rvae.decode = spy
    try:
        tiny_pipeline.restore_ends(raw, roi=roi, tile_size=128, tile_overlap=32)
        sizes = [[(b[2] - b[0]) * (b[3] - b[1]) for b in window] for window in boxes if window]
        assert sizes and all(a > b > c for a, b, c in sizes), boxes
        tiny_pipeline._decode_reach = (reaches[0], reaches[1], 1)
        short = tiny_pipeline.restore_ends(raw, roi=roi, tile_size=128, tile_overlap=32)
    finally:
        del tiny_pipeline.rvae.decode
        tiny_pipeline._decode_reach = None
    assert np.abs(short.restored - full.restored[y : y + h, x : x + w]).max() > 1e-4


def test_strength_ends_and_monotonic_blend(tiny_pipeline):
    raw = random_raw(64, 64)
    ends = tiny_pipeline.restore_ends(raw, tile_size=32, tile_overlap=8)
    # The cached ends give exactly the output at any strength (the ends are kept unclipped).
    for strength in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(
            tiny_pipeline(raw, strength, tile_size=32, tile_overlap=8), ends.blend(strength), atol=1e-6
        )
    assert np.abs(ends.fidelity - ends.restored).mean() > 1e-3
    outputs = np.stack([ends.blend(s) for s in np.linspace(0, 1, 6)])
    steps = np.diff(outputs, axis=0)
    direction = np.sign(ends.restored - ends.fidelity)
    assert np.all(steps * direction >= -1e-6)
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        ends.blend(1.5)


def test_clipped_raw_blocks_render_neutral_white(tiny_pipeline):
    raw = random_raw(64, 64)
    raw.cfa[10:20, 30:44] = 1.0
    out = tiny_pipeline(raw, 0.5, tile_size=32, tile_overlap=8)
    np.testing.assert_array_equal(out[10:20, 30:44], 1.0)


def test_missing_adapter_falls_back_to_shifting_the_mosaic(tiny_model_dir, tmp_path):
    pipeline = load_pipeline(tiny_model_dir)
    for name in ("bggr", "grbg", "gbrg"):
        pipeline.unet.delete_adapters(name)
        pipeline.rvae.delete_adapters(name)
    pipeline.adapters = ("rggb",)
    assert pipeline.route_pattern("GRBG") == ("RGGB", 0, 1)
    assert pipeline.route_pattern("BGGR") == ("RGGB", 1, 1)
    raw = random_raw(64, 80, "GRBG")
    out = pipeline(raw, 0.5, tile_size=32, tile_overlap=8)
    # One column in front, column 1 mirrored (the same colours): RGGB, and no pixel lost.
    shifted = random_raw(64, 81, "RGGB")
    shifted.cfa = np.pad(raw.cfa, ((0, 0), (1, 0)), mode="reflect")
    expected = pipeline(shifted, 0.5, tile_size=32, tile_overlap=8)
    np.testing.assert_allclose(out, expected[:, 1:], atol=1e-6)
    assert np.abs(out[:, 0] - out[:, 1]).max() > 0.01  # the first column restored, not copied
    roi = (3, 5, 40, 30)  # a region shifts the same way
    np.testing.assert_allclose(
        pipeline(raw, 0.5, roi=roi, tile_size=32, tile_overlap=8), out[5:35, 3:43], atol=1e-6
    )


def test_progress_cancel_and_determinism(tiny_pipeline):
    raw = random_raw(128, 128)
    calls = []
    first = tiny_pipeline(raw, 0.5, tile_size=32, tile_overlap=8, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == len(calls) > 1
    np.testing.assert_array_equal(first, tiny_pipeline(raw, 0.5, tile_size=32, tile_overlap=8))
    cancel = threading.Event()

    def cancel_after_two(done, total):
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        tiny_pipeline(raw, 0.5, tile_size=32, tile_overlap=8, progress=cancel_after_two, cancel=cancel)


def test_tiles_start_on_the_unets_grid(tiny_pipeline):
    """The UNet downsamples the latent once more: a tile starting on an odd latent pixel puts its
    stride-2 convolutions on another grid than the whole image's, and its noise prediction differs
    all over the tile (1.77e-3 on kodim05 with the step-30600 weights, not only near the seams), so
    tiles start and end on multiples of the latent scale times the UNet's downsampling."""
    from rddm.model.tiling import tile_grid

    unet, factor = tiny_pipeline.unet, 2**tiny_pipeline.unet.num_upsamplers
    assert factor == 2 and tiny_pipeline.tile_multiple == tiny_pipeline.rvae.downscale // 2 * factor == 8
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in unet.parameters():  # a UNet whose output depends on its input everywhere
            parameter.add_(0.02 * torch.randn_like(parameter))
        latent = torch.randn(1, unet.config.in_channels, 64, 64)
        prompt = tiny_pipeline.null_prompt

        def middle(offset):  # the same 16 x 16 latent pixels, far from any edge, from a crop at offset
            out = unet(latent[..., offset:, offset:], tiny_pipeline.timestep, encoder_hidden_states=prompt)
            return out.sample[..., 24 - offset : 40 - offset, 24 - offset : 40 - offset]

        whole = middle(0)
        scale = whole.abs().max()
        assert (middle(factor) - whole).abs().max() < 1e-5 * scale  # on the grid: the same pixels
        assert (middle(1) - whole).abs().max() > 1e-2 * scale  # off the grid: other pixels
    for start, _ in {(t.top, t.height) for t in tile_grid(1000, 1000, 256, 64, tiny_pipeline.tile_multiple)}:
        assert start % 8 == 0  # on latent multiples alone a tile started at 188 here (148 for kodim05)


def test_bad_arguments(tiny_pipeline, monkeypatch):
    raw = random_raw(64, 64)
    with pytest.raises(ValueError, match="strength"):
        tiny_pipeline(raw, -0.1)
    with pytest.raises(ValueError, match="outside"):
        tiny_pipeline(raw, 0.5, roi=(40, 40, 30, 30))
    with pytest.raises(ValueError, match="empty"):
        tiny_pipeline(raw, 0.5, roi=(0, 0, 0, 10))
    with pytest.raises(ValueError, match="multiples of 8"):
        tiny_pipeline(raw, 0.5, tile_size=36)  # a latent multiple, but not on the UNet's grid
    with pytest.raises(ValueError, match="float32, or in bfloat16"):
        tiny_pipeline.to("cpu", torch.float16)
    with monkeypatch.context() as patch:  # a CPU without bfloat16 instructions
        patch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
        patch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        with pytest.raises(ValueError, match="no bfloat16 instructions"):
            tiny_pipeline.to("cpu", torch.bfloat16)
    if not torch.cuda.is_available():
        with pytest.raises(RddmError, match="no CUDA GPU"):
            tiny_pipeline.to("cuda")
    assert tiny_pipeline.to("auto").device.type in ("cpu", "cuda", "mps")


def test_pixel_group_norm_is_group_norm_of_each_pixel():
    norm = torch.nn.GroupNorm(4, 16)
    torch.nn.init.normal_(norm.weight)
    pixel = PixelGroupNorm(4, 16)
    pixel.load_state_dict(norm.state_dict())
    sample = torch.randn(2, 16, 5, 7)
    expected = norm(sample.permute(0, 2, 3, 1).reshape(-1, 16, 1, 1)).reshape(2, 5, 7, 16).permute(0, 3, 1, 2)
    torch.testing.assert_close(pixel(sample), expected, atol=1e-5, rtol=1e-5)
    # Each output pixel depends on its own input pixel only.
    shifted = sample.clone()
    shifted[..., 0, 0] += 5
    assert torch.equal(pixel(shifted)[..., 1:, 1:], pixel(sample)[..., 1:, 1:])


def test_norm_free_blocks_keep_only_scale_and_shift(tiny_pipeline):
    norm = torch.nn.GroupNorm(1, 8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    module = torch.nn.Sequential(norm)
    use_norm(module, "none")
    assert type(module[0]) is AffineNorm
    torch.testing.assert_close(module[0].weight, norm.weight)
    sample = torch.randn(2, 8, 3, 4) * 7
    torch.testing.assert_close(module(sample), sample * norm.weight[:, None, None] + norm.bias[:, None, None])
    with pytest.raises(ValueError, match="unknown normalisation"):
        use_norm(torch.nn.Sequential(torch.nn.GroupNorm(1, 8)), "batch")
    # The shipped CPU config is norm-free in both models; loading keeps it so.
    assert tiny_pipeline.rvae.norm_kind == "none"
    for model in (tiny_pipeline.rvae, tiny_pipeline.unet):
        kinds = {type(m) for m in model.modules() if isinstance(m, torch.nn.GroupNorm)}
        assert kinds == {AffineNorm}


def test_pipeline_is_diffusers_style(tiny_model_dir, tmp_path):
    pipeline = RDDMPipeline.from_pretrained(str(tiny_model_dir))
    pipeline.save_pretrained(tmp_path / "again")
    again = RDDMPipeline.from_pretrained(str(tmp_path / "again"))
    raw = random_raw(48, 48, "BGGR")
    np.testing.assert_array_equal(
        pipeline(raw, 0.3, tile_size=32, tile_overlap=8), again(raw, 0.3, tile_size=32, tile_overlap=8)
    )


def test_another_callers_adapter_between_tiles_changes_nothing(tiny_pipeline):
    """The engine runs a preview of a BGGR RAW between the tiles of an RGGB job."""
    raw = random_raw(64, 64, "RGGB")
    alone = tiny_pipeline(raw, 0.5, tile_size=32, tile_overlap=8)

    def another_caller(done: int, total: int) -> None:
        tiny_pipeline.activate_adapter("BGGR")

    interleaved = tiny_pipeline(raw, 0.5, tile_size=32, tile_overlap=8, progress=another_caller)
    np.testing.assert_array_equal(interleaved, alone)


def test_decode_reach_is_bounded_without_attention_and_unbounded_with_it():
    """A region restore trims each tile's decode to the decoder's reach; a decoder with attention
    reads its whole input, so nothing is trimmed for it."""
    from rddm.model.registry import build_pipeline
    from tests.conftest import TINY

    torch.manual_seed(0)
    prompt = torch.randn(1, TINY["prompt_tokens"], TINY["prompt_dim"])
    local = build_pipeline(TINY["rvae"], TINY["unet"], null_prompt=prompt, patterns=CFA_PATTERNS)
    assert local.decode_reach("RGGB") == 55  # conv_in + mid block + up blocks, probed
    attention = build_pipeline(
        {**TINY["rvae"], "mid_block_add_attention": True, "norm_free": False, "pixel_norm": False},
        TINY["unet"],
        null_prompt=prompt,
        patterns=CFA_PATTERNS,
    )
    assert attention.decode_reach("RGGB") is None
    raw = random_raw(200, 240)
    whole = attention(raw, 0.5, tile_size=64, tile_overlap=16)
    region = attention(raw, 0.5, roi=(70, 50, 60, 40), tile_size=64, tile_overlap=16)
    np.testing.assert_allclose(region, whole[50:90, 70:130], rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_edge_padding_is_kept_in_the_folder_and_regions_stay_exact(tmp_path, mode):
    """The RVAE's convolutions pad with the edge instead of zeros (see rddm.model.padding), LoRA
    layers included; kept in model_index.json; a region is still exactly the full restore's there."""
    from rddm.model.registry import build_pipeline
    from tests.conftest import TINY, perturb_adapters

    torch.manual_seed(0)
    prompt = torch.randn(1, TINY["prompt_tokens"], TINY["prompt_dim"])
    built = build_pipeline(TINY["rvae"], TINY["unet"], null_prompt=prompt, patterns=CFA_PATTERNS)
    perturb_adapters(built)
    built.save_pretrained(tmp_path / "zeros")
    built.info["padding_mode"] = mode
    built.save_pretrained(tmp_path / mode)
    zeros, padded = load_pipeline(tmp_path / "zeros"), load_pipeline(tmp_path / mode)
    assert padded.info["padding_mode"] == mode and "padding_mode" not in zeros.info

    assert pad_modes(padded.rvae) == {mode}
    assert pad_modes(padded.unet) == {"zeros"}  # the UNet keeps zeros without unet_padding_mode
    lora = [m for name, m in padded.rvae.named_modules() if name.endswith("lora_A.rggb")]
    assert lora and all(m.padding_mode == mode for m in lora if max(m.padding) > 0)
    raw = random_raw(130, 170, "GRBG")
    full = padded(raw, 0.7, tile_size=32, tile_overlap=8)
    assert np.abs(full - zeros(raw, 0.7, tile_size=32, tile_overlap=8)).max() > 1e-4  # it pads otherwise
    for roi in [(0, 0, 40, 30), (33, 17, 64, 80), (101, 99, 69, 31)]:
        x, y, w, h = roi
        region = padded(raw, 0.7, roi=roi, tile_size=32, tile_overlap=8)
        np.testing.assert_allclose(region, full[y : y + h, x : x + w], rtol=0, atol=1e-6)


def test_the_unets_edge_padding_is_kept_in_the_folder_and_regions_stay_exact(tmp_path):
    """``unet_padding_mode`` pads the UNet's convolutions (its LoRA layers included) with the edge,
    apart from the RVAE's; kept in model_index.json; a region is still exactly the full restore's."""
    from rddm.model.registry import build_pipeline
    from tests.conftest import TINY, perturb_adapters

    torch.manual_seed(0)
    prompt = torch.randn(1, TINY["prompt_tokens"], TINY["prompt_dim"])
    built = build_pipeline(TINY["rvae"], TINY["unet"], null_prompt=prompt, patterns=CFA_PATTERNS)
    perturb_adapters(built)
    with torch.no_grad():  # a UNet whose output depends on what its convolutions see at the edge
        for parameter in built.unet.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    built.info["padding_mode"] = "replicate"
    built.save_pretrained(tmp_path / "zeros")
    built.info["unet_padding_mode"] = "replicate"
    built.save_pretrained(tmp_path / "unet")
    zeros, padded = load_pipeline(tmp_path / "zeros"), load_pipeline(tmp_path / "unet")
    assert padded.info["unet_padding_mode"] == "replicate" and "unet_padding_mode" not in zeros.info

    assert pad_modes(padded.unet) == {"replicate"} and pad_modes(zeros.unet) == {"zeros"}
    assert pad_modes(padded.rvae) == pad_modes(zeros.rvae) == {"replicate"}
    lora = [m for name, m in padded.unet.named_modules() if name.endswith("lora_A.rggb")]
    assert any(isinstance(m, torch.nn.Conv2d) and max(m.padding) > 0 for m in lora)
    assert all(
        m.padding_mode == "replicate" for m in lora if isinstance(m, torch.nn.Conv2d) and max(m.padding)
    )
    raw = random_raw(130, 170, "RGGB")
    full = padded(raw, 0.7, tile_size=32, tile_overlap=8)
    assert np.abs(full - zeros(raw, 0.7, tile_size=32, tile_overlap=8)).max() > 1e-4  # it pads otherwise
    for roi in [(0, 0, 40, 30), (101, 99, 69, 31)]:
        x, y, w, h = roi
        region = padded(raw, 0.7, roi=roi, tile_size=32, tile_overlap=8)
        np.testing.assert_allclose(region, full[y : y + h, x : x + w], rtol=0, atol=1e-6)


def test_refine_blocks_are_kept_in_the_folder_and_regions_stay_exact(tmp_path):
    """An RVAE with refine blocks (see rddm.model.rvae) saves and loads them, and a region restore is
    still exactly the full restore's there (the decode reach is probed through them too)."""
    from rddm.model.registry import build_pipeline
    from tests.conftest import TINY, perturb_adapters

    torch.manual_seed(0)
    prompt = torch.randn(1, TINY["prompt_tokens"], TINY["prompt_dim"])
    plain = build_pipeline(TINY["rvae"], TINY["unet"], null_prompt=prompt, patterns=CFA_PATTERNS)
    rvae = {**TINY["rvae"], "refine_blocks": 2}
    built = build_pipeline(rvae, TINY["unet"], null_prompt=prompt, patterns=CFA_PATTERNS)
    built.info["padding_mode"] = "replicate"
    perturb_adapters(built)
    built.save_pretrained(tmp_path / "refined")
    refined = load_pipeline(tmp_path / "refined")
    assert len(refined.rvae.refine) == 2 and len(plain.rvae.refine) == 0
    for key, value in built.rvae.state_dict().items():
        if key.startswith("refine."):
            assert torch.equal(refined.rvae.state_dict()[key], value)
    assert pad_modes(refined.rvae.refine) == {"replicate"}
    reaches = refined.decode_reaches("RGGB")
    assert None not in reaches
    raw = random_raw(130, 170, "BGGR")
    full = refined(raw, 0.7, tile_size=32, tile_overlap=8)
    for roi in [(0, 0, 40, 30), (33, 17, 64, 80), (101, 99, 69, 31)]:
        x, y, w, h = roi
        region = refined(raw, 0.7, roi=roi, tile_size=32, tile_overlap=8)
        np.testing.assert_allclose(region, full[y : y + h, x : x + w], rtol=0, atol=1e-6)


def test_an_unknown_padding_mode_is_refused_naming_the_folder(tiny_model_dir, tmp_path):
    import json
    import shutil

    from rddm.model.registry import ModelLoadError

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "padding_mode": "circular"}))
    with pytest.raises(ModelLoadError, match=r"model.*padding_mode must be one of zeros, replicate, reflect"):
        load_pipeline(folder)
    (folder / "model_index.json").write_text(json.dumps({**index, "unet_padding_mode": "edge"}))
    with pytest.raises(ModelLoadError, match=r"model.*padding_mode must be one of zeros, replicate, reflect"):
        load_pipeline(folder)


def test_a_restore_merges_the_adapter_and_gives_the_layers_weights_back_exactly(tiny_model_dir, tmp_path):
    """On the CPU a restore adds its pattern's adapter into the layers' own weights (one
    convolution per LoRA layer instead of three): the output of peft's LoRA layers up to rounding,
    the same numbers whatever pattern ran before, and the layers' own weights back bit for bit
    for training (which runs the LoRA layers) and for saving."""
    pipeline = load_pipeline(tiny_model_dir)
    own = {name: value.clone() for name, value in base_weights(pipeline.unet).items()}
    own |= {f"rvae.{name}": value.clone() for name, value in base_weights(pipeline.rvae).items()}

    def unchanged(candidate) -> bool:
        now = base_weights(candidate.unet) | {f"rvae.{k}": v for k, v in base_weights(candidate.rvae).items()}
        return now.keys() == own.keys() and all(torch.equal(now[name], own[name]) for name in own)

    raw = random_raw(64, 64, "GRBG")
    merged = pipeline(raw, 0.5, tile_size=32, tile_overlap=8)
    assert pipeline._active_adapter == ("grbg", True) and not unchanged(pipeline)
    layers = load_pipeline(tiny_model_dir)
    layers._inference_adapter = layers.activate_adapter  # peft's LoRA layers, as training runs them
    as_layers = layers(raw, 0.5, tile_size=32, tile_overlap=8)
    assert layers._active_adapter == ("grbg", False)
    np.testing.assert_allclose(merged, as_layers, rtol=0, atol=1e-5)
    for pattern in ("BGGR", "RGGB", "GBRG"):
        pipeline(random_raw(64, 64, pattern), 0.5, tile_size=32, tile_overlap=8)
    np.testing.assert_array_equal(pipeline(raw, 0.5, tile_size=32, tile_overlap=8), merged)

    pipeline.activate_adapter("GRBG")  # training's switch
    assert pipeline._active_adapter == ("grbg", False) and unchanged(pipeline)
    pipeline(raw, 0.5, tile_size=32, tile_overlap=8)  # merged again
    pipeline.save_pretrained(tmp_path / "saved")
    assert unchanged(pipeline) and unchanged(load_pipeline(tmp_path / "saved"))
    np.testing.assert_array_equal(pipeline(raw, 0.5, tile_size=32, tile_overlap=8), merged)


def test_a_model_trained_on_one_pattern_shifts_the_others_onto_it(tmp_path):
    pipeline = random_tiny((), {"name": "test-canonical", "canonical_pattern": "RGGB"})
    pipeline.save_pretrained(tmp_path / "canonical")
    pipeline = load_pipeline(tmp_path / "canonical")  # the pattern travels in the model index
    assert pipeline.adapters == () and pipeline.info["canonical_pattern"] == "RGGB"
    assert [pipeline.route_pattern(p) for p in CFA_PATTERNS] == [
        ("RGGB", 0, 0),
        ("RGGB", 1, 1),
        ("RGGB", 0, 1),
        ("RGGB", 1, 0),
    ]
    raw = random_raw(64, 80, "GBRG")
    out = pipeline(raw, 0.5, tile_size=32, tile_overlap=8)
    shifted = random_raw(65, 80, "RGGB")
    shifted.cfa = np.pad(raw.cfa, ((1, 0), (0, 0)), mode="reflect")
    expected = pipeline(shifted, 0.5, tile_size=32, tile_overlap=8)
    np.testing.assert_allclose(out, expected[1:], atol=1e-6)
    # Without a canonical pattern a shared model runs every pattern as it is.
    pipeline.info.pop("canonical_pattern")
    assert pipeline.route_pattern("GBRG") == ("GBRG", 0, 0)
