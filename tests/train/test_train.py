"""Training: the loss falls on a miniature config, a resumed run continues exactly, the export loads."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import piq
import pytest
import torch
import yaml
from PIL import Image

from rddm.errors import RddmError
from rddm.model.registry import load_pipeline
from rddm.synth import SynthConfig
from rddm.train.config import CONFIG_DIR, Stage, TrainConfig, load_config
from rddm.train.data import PairBatches, load_sources, validation_batches
from rddm.train.loop import (
    RDDMTrainer,
    TrainingDiverged,
    canonical_from_adapter,
    starting_model,
    train,
    trainable_parameters,
)
from rddm.train.losses import haarpsi_loss, restoration_loss
from tests.conftest import pad_modes, random_raw

MINI_MODEL = {
    "rvae": {
        "block_out_channels": [8, 16, 16],
        "layers_per_block": 1,
        "norm_num_groups": 1,
        "mid_block_add_attention": False,
        "pixel_norm": False,
        "norm_free": True,
        "skip_connections": True,
        "output_shuffle": True,
        "input_residual": True,
    },
    "unet": {
        "sample_size": 8,
        "down_block_types": ["DownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "UpBlock2D"],
        "mid_block_type": None,
        "block_out_channels": [16, 32],
        "layers_per_block": 1,
        "norm_num_groups": 1,
        "cross_attention_dim": 8,
        "attention_head_dim": 4,
    },
    "prompt_tokens": 1,
    "prompt_dim": 8,
    "lora_rank": 2,
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for index in range(6):  # stripes near the mosaic's Nyquist rate: hard for bilinear demosaicking
        yy, xx = np.mgrid[0:80, 0:96].astype(np.float64)
        frequency = 0.6 + 0.1 * index
        image = 0.5 + 0.3 * np.stack(
            [
                np.sin(xx * frequency + index),
                np.sin(yy * frequency * 0.8),
                np.sin((xx + yy) * frequency * 0.6),
            ],
            -1,
        )
        image += rng.normal(0, 0.01, image.shape)
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(folder / f"p{index}.png")
    return folder


def mini_config(photos, steps: int, **changes) -> TrainConfig:
    config = TrainConfig(
        name="mini",
        model=MINI_MODEL,
        stages=[
            Stage(
                name="joint",
                steps=steps,
                train=["rvae_encoder", "rvae_decoder", "unet", "adapters"],
                learning_rate=3e-3,
            )
        ],
        data_dir=str(photos),
        validation_images=2,
        crop=32,
        batch_size=4,
        skip_dropout=0.5,
        log_every=1,
        validate_every=1000,
        checkpoint_every=1000,
        threads=1,
    )
    return dataclasses.replace(config, **changes)


def test_run_logs_validates_and_exports_a_loadable_model(photos, tmp_path):
    model = train(mini_config(photos, 12), tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 12 and all(np.isfinite(losses))
    validations = [entry["step"] for entry in log if "val_psnr_restored" in entry]
    assert validations == [0, 12]  # the starting point and the end
    pipeline = load_pipeline(model)
    assert pipeline.info["trained"] is True and pipeline.info["steps"] == 12
    assert pipeline.adapters == ("rggb", "bggr", "grbg", "gbrg")


def test_fresh_model_starts_as_bilinear_with_a_live_skip(photos):
    """Zeroed output convolutions make a fresh model exactly the bilinear demosaic, and the skip
    projection is not zeroed too (behind a zero output layer it would never receive a gradient)."""
    from rddm.model.rvae import bilinear_demosaic

    pipeline = starting_model(mini_config(photos, 1))
    assert pipeline.rvae.skip_half.weight.abs().max() > 0
    batch = PairBatches(load_sources(str(photos), 900), 32, 2, {"none": 1.0}, SynthConfig(), 0).batch(0)
    with torch.no_grad():
        fidelity, restored = RDDMTrainer(pipeline)(batch["planes"], batch["pattern"])
    base = bilinear_demosaic(batch["planes"], batch["pattern"])
    torch.testing.assert_close(fidelity, base, rtol=0, atol=0)
    torch.testing.assert_close(restored, base, rtol=0, atol=0)


def test_loss_falls_on_a_fixed_batch(photos):
    """The gradient path reaches the weights and the optimiser lowers the loss (on one batch, so
    the figure is not drowned by batch-to-batch differences in noise)."""
    config = mini_config(photos, 60)
    pipeline = starting_model(config)
    trainer = RDDMTrainer(pipeline).train()
    optimizer = torch.optim.Adam(trainable_parameters(pipeline, config.stages[0].train), lr=1e-3)
    images = load_sources(str(photos), 900)
    batch = PairBatches(images, 32, 8, {"none": 1.0}, SynthConfig(), seed=0).batch(0)
    losses = []
    for _ in range(60):
        fidelity, restored = trainer(batch["planes"], batch["pattern"])
        loss = sum(
            restoration_loss(end, batch["target"], batch["to_srgb"], config.loss)[0]
            for end in (fidelity, restored)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.95 * losses[0]


def test_resume_continues_exactly(photos, tmp_path):
    """A run stopped at step 3 and resumed ends with the same weights as one straight run; the resumed
    run synthesizes its batches in two worker processes, which must not change them either."""
    config = mini_config(photos, 6, checkpoint_every=3)
    train(config, tmp_path / "straight", progress=False)
    ahead = dataclasses.replace(config, data_workers=2)
    train(ahead, tmp_path / "resumed", progress=False, max_steps=3)
    train(ahead, tmp_path / "resumed", progress=False)
    straight = torch.load(tmp_path / "straight/checkpoints/step_6/state.pt", weights_only=False)["model"]
    resumed = torch.load(tmp_path / "resumed/checkpoints/step_6/state.pt", weights_only=False)["model"]
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(straight[key], resumed[key], rtol=0, atol=0)


def test_the_processes_of_a_step_share_its_pattern_and_not_its_crops(photos):
    """With several processes every one trains the same adapter at a step (DDP then reduces one
    set of gradients), on crops of its own; process 0's batches are a one-process run's."""
    batches = PairBatches(load_sources(str(photos), 900), 32, 2, {"none": 1.0}, SynthConfig(), seed=5)
    patterns = set()
    for step in range(8):
        first, second = batches.batch(step, 0), batches.batch(step, 1)
        assert first["pattern"] == second["pattern"]
        assert not torch.equal(first["planes"], second["planes"])
        torch.testing.assert_close(first["planes"], batches.batch(step)["planes"], rtol=0, atol=0)
        patterns.add(first["pattern"])
    assert len(patterns) > 1  # the pattern still changes from step to step


def test_two_processes_train_one_model(photos, tmp_path):
    """`torchrun` (what `accelerate launch` starts) with two CPU processes and a model with
    adapters: it ends (no process waits forever for another's gradients), every checkpoint found
    the processes' weights equal (the run stops otherwise: DDP had reduced no frozen-at-wrap part,
    the base weights under peft's adapters included), one log line per step, one exported model."""
    config = mini_config(photos, 4, checkpoint_every=2, validate_every=2)
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(config)), encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "rddm.cli", "train", "--config", str(path), "--out", str(tmp_path / "run")]
    environment = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in records if "val_psnr_half" in r] == [0, 2, 4]
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir()) == ["step_2", "step_4"]
    assert load_pipeline(str(tmp_path / "run/model")).info["steps"] == 4


def test_divergence_stops_the_run(photos, tmp_path):
    """A run whose activations run away stops with one clear error instead of training on as a dead
    (bilinear) model; the log says where. A healthy run's largest activation is logged too."""
    config = mini_config(photos, 8)
    diverging = dataclasses.replace(
        config, stages=[dataclasses.replace(config.stages[0], learning_rate=30.0)]
    )
    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+: .*lower the learning rate"):
        train(diverging, tmp_path / "diverging", progress=False)
    records = [json.loads(line) for line in (tmp_path / "diverging/log.jsonl").read_text().splitlines()]
    assert records[-1]["diverged"] is True
    assert not (tmp_path / "diverging/model").exists()
    train(config, tmp_path / "healthy", progress=False, max_steps=2)
    records = [json.loads(line) for line in (tmp_path / "healthy/log.jsonl").read_text().splitlines()]
    assert all(0 < r["activation_absmax"] < 100 for r in records if "loss" in r)


def test_shipped_configs_load():
    tiny = load_config("rddm-tiny")
    assert tiny.model["rvae"]["output_shuffle"] is True and tiny.total_steps > 0
    sd21 = load_config("rddm-sd21")
    assert sd21.model["unet"]["cross_attention_dim"] == 1024
    assert [stage.name for stage in sd21.stages] == ["rvae", "diffusion"]
    saturated = load_config("rddm-tiny-saturated")  # the shipped weights' steps 8000-12000
    assert saturated.model["from_folder"] == "runs/rddm-tiny/model"
    assert saturated.model["rvae"] == tiny.model["rvae"] and saturated.model["unet"] == tiny.model["unet"]
    assert (saturated.saturation_mode, saturated.saturation_probability) == ("compress", 0.5)
    again = load_config("rddm-tiny-saturated-2")  # steps 12000-16500
    assert again.model["from_folder"] == "runs/rddm-tiny-saturated/model"
    assert again.model["rvae"] == tiny.model["rvae"] and again.total_steps == 4500
    assert (again.saturation_mode, again.stages[0].learning_rate) == ("compress", 1.5e-4)
    last = load_config("rddm-tiny-saturated-3")  # steps 16500-20100, the RVAE padding with the edge
    assert last.model["from_folder"] == "runs/rddm-tiny-saturated-2/model"
    assert last.model["padding_mode"] == "replicate" and last.total_steps == 3600
    assert last.model["rvae"] == tiny.model["rvae"] and (last.seed, last.saturation_probability) == (4, 0.5)
    fifth = load_config("rddm-tiny-saturated-4")  # steps 20100-23100, another restart
    assert fifth.model["from_folder"] == "runs/rddm-tiny-saturated-3/model"
    assert fifth.model["padding_mode"] == "replicate" and fifth.total_steps == 3000
    assert fifth.model["rvae"] == tiny.model["rvae"]
    assert (fifth.seed, fifth.crop, fifth.batch_size) == (5, 64, 16)
    sixth = load_config("rddm-tiny-saturated-5")  # steps 23100-26100, a restart at 1e-4
    assert sixth.model["from_folder"] == "runs/rddm-tiny-saturated-4/model"
    assert sixth.model["rvae"] == tiny.model["rvae"] and sixth.model["padding_mode"] == "replicate"
    assert (sixth.seed, sixth.total_steps, sixth.stages[0].learning_rate) == (8, 3000, 1e-4)
    seventh = load_config("rddm-tiny-saturated-6")  # steps 26100-30600, the UNet padding with the edge
    assert seventh.model["from_folder"] == "runs/rddm-tiny-saturated-5/model"
    assert seventh.model["rvae"] == tiny.model["rvae"] and seventh.model["unet"] == tiny.model["unet"]
    assert (seventh.model["padding_mode"], seventh.model["unet_padding_mode"]) == ("replicate", "replicate")
    assert (seventh.seed, seventh.total_steps, seventh.stages[0].learning_rate) == (10, 4500, 1.5e-4)
    eighth = load_config("rddm-tiny-saturated-7")  # steps 30600-36100, a restart at 2e-4
    assert eighth.model["from_folder"] == "runs/rddm-tiny-saturated-6/model"
    assert {k: v for k, v in eighth.model.items() if k != "from_folder"} == {
        k: v for k, v in seventh.model.items() if k != "from_folder"
    }
    assert (eighth.seed, eighth.total_steps, eighth.stages[0].learning_rate) == (12, 5500, 2e-4)
    ninth = load_config("rddm-tiny-saturated-8")  # steps 36100-44100, shipped with tile overlap 48
    assert ninth.model["from_folder"] == "runs/rddm-tiny-saturated-7/model"
    assert {k: v for k, v in ninth.model.items() if k != "from_folder"} == {
        k: v for k, v in eighth.model.items() if k != "from_folder"
    }
    assert (ninth.seed, ninth.total_steps, ninth.stages[0].learning_rate) == (13, 8000, 2e-4)
    assert ninth.threads == 2
    tenth = load_config("rddm-tiny-saturated-9")  # shipped: steps 44100-49600
    assert tenth.model["from_folder"] == "runs/rddm-tiny-saturated-8/model"
    assert {k: v for k, v in tenth.model.items() if k != "from_folder"} == {
        k: v for k, v in ninth.model.items() if k != "from_folder"
    }
    assert (tenth.seed, tenth.total_steps, tenth.stages[0].learning_rate) == (17, 5500, 2e-4)
    assert tenth.threads == 2
    grown = load_config("rddm-tiny-grown")  # the shipped weights with four refine blocks
    assert (grown.model["from_folder"], grown.model["grow"]) == ("rddm-tiny", {"refine_blocks": 4})
    assert {k: v for k, v in grown.model.items() if k not in ("from_folder", "grow")} == {
        k: v for k, v in tenth.model.items() if k != "from_folder"
    }
    canonical = load_config("rddm-tiny-canonical")  # the candidate: the RGGB adapter merged, RGGB only
    assert (canonical.model["from_folder"], canonical.model["canonical_pattern"]) == ("rddm-tiny", "RGGB")
    assert canonical.stages[0].train == ["rvae_encoder", "rvae_decoder", "unet"]
    assert (canonical.seed, canonical.total_steps, canonical.stages[0].learning_rate) == (31, 4000, 1e-4)
    assert (canonical.noise, canonical.saturation_mode) == (grown.noise, grown.saturation_mode)
    second = load_config("rddm-tiny-canonical-2")  # shipped: 6000 more steps of it at 2e-4
    assert second.model["from_folder"] == "runs/canonical-ft/model"
    assert {k: v for k, v in second.model.items() if k != "from_folder"} == {
        k: v for k, v in canonical.model.items() if k != "from_folder"
    }
    assert (second.seed, second.total_steps, second.stages[0].learning_rate) == (41, 6000, 2e-4)
    assert (second.noise, second.loss, second.crop) == (canonical.noise, canonical.loss, canonical.crop)
    third = load_config("rddm-tiny-canonical-3")  # shipped: 6000 more steps of the step-65600 weights
    assert third.model["from_folder"] == "runs/canonical-2b/model"
    assert {k: v for k, v in third.model.items() if k != "from_folder"} == {
        k: v for k, v in second.model.items() if k != "from_folder"
    }
    assert (third.seed, third.total_steps, third.stages[0].learning_rate) == (43, 6000, 2e-4)
    fourth = load_config("rddm-tiny-canonical-4")  # the control: 6000 more steps of the third's end
    assert fourth.model["from_folder"] == "runs/canonical-3/model"
    assert {k: v for k, v in fourth.model.items() if k != "from_folder"} == {
        k: v for k, v in third.model.items() if k != "from_folder"
    }
    assert (fourth.seed, fourth.total_steps, fourth.stages[0].learning_rate) == (47, 6000, 2e-4)
    assert (fourth.noise, fourth.loss, fourth.crop) == (third.noise, third.loss, third.crop)
    assert (third.srgb_camera_probability, fourth.srgb_camera_probability) == (0.0, 0.0)
    srgb = load_config("rddm-tiny-canonical-4-srgb")  # shipped: the control, a quarter sRGB-camera
    assert srgb.srgb_camera_probability == 0.25
    assert dataclasses.replace(srgb, name=fourth.name, srgb_camera_probability=0.0) == fourth
    fifth = load_config("rddm-tiny-canonical-5-srgb")  # shipped: 8000 more steps of the sRGB run's end
    assert fifth.model["from_folder"] == "runs/canonical-4-srgb/model"
    assert {k: v for k, v in fifth.model.items() if k != "from_folder"} == {
        k: v for k, v in srgb.model.items() if k != "from_folder"
    }
    assert (fifth.seed, fifth.total_steps, fifth.stages[0].learning_rate) == (53, 8000, 2e-4)
    assert fifth.threads == 2
    assert (fifth.noise, fifth.loss, fifth.crop, fifth.srgb_camera_probability) == (
        srgb.noise,
        srgb.loss,
        srgb.crop,
        srgb.srgb_camera_probability,
    )
    sixth = load_config("rddm-tiny-canonical-6-haarpsi")  # shipped: HaarPSI on the restored end only
    assert sixth.model["from_folder"] == "runs/canonical-5-srgb/model"
    assert (sixth.loss, sixth.restored_loss) == (fifth.loss, {**fifth.loss, "haarpsi": 0.5})
    assert (sixth.seed, fifth.restored_loss) == (59, None)
    assert (
        dataclasses.replace(sixth, name=fifth.name, model=fifth.model, seed=fifth.seed, restored_loss=None)
        == fifth
    )
    seventh = load_config("rddm-tiny-canonical-7-haarpsi")  # run, not shipped: the HaarPSI weight doubled
    assert seventh.model["from_folder"] == "runs/canonical-6-haarpsi/model"
    assert (seventh.restored_loss, seventh.seed) == ({**fifth.loss, "haarpsi": 1.0}, 61)
    assert (
        dataclasses.replace(
            seventh, name=sixth.name, model=sixth.model, seed=sixth.seed, restored_loss=sixth.restored_loss
        )
        == sixth
    )
    eighth = load_config("rddm-tiny-canonical-8-grown")  # run, not shipped: the model grown
    assert eighth.model["from_folder"] == "runs/rddm-tiny-93600"  # a copy of the step-93600 folder
    assert (eighth.model["grow"], eighth.seed) == ({"refine_blocks": 8}, 67)
    assert {k: v for k, v in eighth.model.items() if k not in ("from_folder", "grow")} == {
        k: v for k, v in sixth.model.items() if k != "from_folder"
    }
    half_rate = [dataclasses.replace(s, steps=3000, learning_rate=1e-4) for s in sixth.stages]
    assert eighth.stages == half_rate  # fewer steps at half the rate
    assert (
        dataclasses.replace(eighth, name=sixth.name, model=sixth.model, seed=sixth.seed, stages=sixth.stages)
        == sixth
    )


def test_sd21_config_trains_at_reduced_widths(photos, tmp_path):
    """The paper-sized recipe (attention, GroupNorm, SD's two stages) as a smoke test, narrow."""
    sd21 = load_config("rddm-sd21")
    model = json.loads(json.dumps(sd21.model))
    model["rvae"] |= {"block_out_channels": [8, 8, 16, 16], "norm_num_groups": 4}
    model["unet"] |= {
        "block_out_channels": [16, 16, 32, 32],
        "attention_head_dim": [2, 2, 4, 4],
        "cross_attention_dim": 16,
        "norm_num_groups": 4,
        "sample_size": 8,
    }
    model["prompt_dim"] = 16
    stages = [dataclasses.replace(stage, steps=2) for stage in sd21.stages]
    config = dataclasses.replace(
        sd21,
        model=model,
        stages=stages,
        data_dir=str(photos),
        crop=32,
        batch_size=2,
        validation_images=1,
        log_every=1,
        threads=1,
    )
    exported = load_pipeline(train(config, tmp_path / "sd21", progress=False))
    assert exported.info["steps"] == 4 and exported.rvae.downscale == 8


def test_data_workers_start_after_opencv_used_its_threads():
    """Forked workers must not inherit OpenCV's thread pool: a worker that touched it hung for ever
    (seen in the full suite). A child process, so that a hang fails the test instead of the suite."""
    import subprocess
    import sys

    code = (
        "import numpy as np, cv2\n"
        "from rddm.synth import SynthConfig\n"
        "from rddm.train.data import PairBatches, step_batches\n"
        "image = np.random.rand(3000, 3000, 3).astype(np.float32)\n"
        "for _ in range(10):\n"
        "    cv2.GaussianBlur(image, (9, 9), 2)\n"
        "photos = [np.random.rand(200, 200, 3).astype(np.float32) for _ in range(4)]\n"
        "batches = PairBatches(photos, 64, 4, {'range': 1.0}, SynthConfig(), 0)\n"
        "print(sum(1 for _ in step_batches(batches, 0, 6, 0, workers=2)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "6"


def test_saturate_scales_chroma_and_keeps_grey_and_luminance():
    from rddm.color import srgb_decode
    from rddm.train.data import _LUMINANCE, saturate

    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, size=(16, 16, 3)).astype(np.float32)
    image[0, 0] = 0.5  # a grey pixel has no chroma to scale
    out = saturate(image, 1.5)
    np.testing.assert_allclose(out[0, 0], image[0, 0], atol=1e-4)
    np.testing.assert_allclose(saturate(image, 1.0), image, atol=1e-4)
    linear, scaled = srgb_decode(image), srgb_decode(out)
    unclipped = (scaled > 1e-4).all(-1) & (scaled < 1 - 1e-4).all(-1)
    assert unclipped.mean() > 0.5
    np.testing.assert_allclose((scaled @ _LUMINANCE)[unclipped], (linear @ _LUMINANCE)[unclipped], atol=1e-4)
    chroma = np.abs(linear - (linear @ _LUMINANCE)[..., None])
    assert (np.abs(scaled - (scaled @ _LUMINANCE)[..., None])[unclipped] > chroma[unclipped] * 1.49).any()
    assert saturate(image, 0.0).std(axis=-1).max() < 1e-3  # no chroma left


def test_saturation_augmentation_reaches_the_training_pairs(photos):
    """With the augmentation on, the targets hold more near-zero channels (saturated colours);
    with it off, the batches are exactly those of a config that never had it."""
    images = load_sources(str(photos), 900)
    plain = PairBatches(images, 32, 8, {"none": 1.0}, SynthConfig(), seed=0)
    off = PairBatches(images, 32, 8, {"none": 1.0}, SynthConfig(), seed=0, saturation_range=(2.0, 2.0))
    torch.testing.assert_close(plain.batch(3)["target"], off.batch(3)["target"], rtol=0, atol=0)
    on = PairBatches(
        images,
        32,
        8,
        {"none": 1.0},
        SynthConfig(),
        seed=0,
        saturation_probability=1.0,
        saturation_range=(2.0, 2.0),
    )
    dark = [float((b.batch(3)["target"].amin(dim=1) < 0.01).float().mean()) for b in (plain, on)]
    assert dark[1] > 0.01 and dark[1] > 3 * dark[0]  # measured: 0 -> 0.018 on these stripes


def test_compressed_saturation_stays_in_gamut_without_clipping():
    """The soft form scales chroma towards the gamut edge: luminance kept everywhere, no channel
    lands on exactly 0 or 1, more chroma than before (up to the factor), and colours already at the
    edge are left as they are."""
    from rddm.color import srgb_decode
    from rddm.train.data import _LUMINANCE, saturate

    rng = np.random.default_rng(1)
    image = rng.uniform(0.05, 0.95, size=(32, 32, 3)).astype(np.float32)
    image[0, 0] = 0.5
    image[0, 1] = (1.0, 0.0, 0.0)  # on the gamut edge already
    linear = srgb_decode(image)
    for factor in (1.2, 2.0, 3.0):
        out = saturate(image, factor, "compress")
        scaled = srgb_decode(out)
        np.testing.assert_allclose(scaled @ _LUMINANCE, linear @ _LUMINANCE, atol=2e-4)
        interior = np.ones(image.shape[:2], bool)
        interior[0, :2] = False
        assert (scaled[interior] > 1e-6).all() and (scaled[interior] < 1 - 1e-6).all()
        chroma = np.abs(linear - (linear @ _LUMINANCE)[..., None]).max(-1)
        gained = np.abs(scaled - (scaled @ _LUMINANCE)[..., None]).max(-1)
        assert (gained[interior] >= chroma[interior] * (1 - 1e-4)).all()
        assert (gained[interior] <= chroma[interior] * factor * (1 + 1e-4)).all()
        assert (gained[interior] > chroma[interior] * 1.05).mean() > 0.75  # 0.84 at 1.2
        np.testing.assert_allclose(out[0, :2], image[0, :2], atol=1e-4)
    np.testing.assert_allclose(saturate(image, 1.0, "compress"), image, atol=1e-4)
    with pytest.raises(ValueError, match="clip or compress"):
        saturate(image, 2.0, "soft")


def test_srgb_camera_crops_reach_the_training_pairs(photos):
    """With srgb_camera_probability 1 every pair is mosaicked as linear sRGB itself (neutral white
    balance, the identity colour matrix); with it off (any value of 0) the batches are exactly those
    of a config that never had it; in between, both kinds meet in one batch."""
    images = load_sources(str(photos), 900)
    plain = PairBatches(images, 32, 8, {"none": 1.0}, SynthConfig(), seed=0)
    off = PairBatches(images, 32, 8, {"none": 1.0}, SynthConfig(), seed=0, srgb_camera_probability=0.0)
    for key in ("planes", "target", "to_srgb"):
        torch.testing.assert_close(plain.batch(3)[key], off.batch(3)[key], rtol=0, atol=0)
    assert not torch.allclose(plain.batch(3)["to_srgb"][0], torch.eye(3), atol=1e-3)
    every = PairBatches(images, 32, 8, {"none": 1.0}, SynthConfig(), seed=0, srgb_camera_probability=1.0)
    batch = every.batch(3)
    torch.testing.assert_close(batch["to_srgb"], torch.eye(3).expand(8, 3, 3), atol=1e-4, rtol=0)
    mixed = PairBatches(images, 32, 16, {"none": 1.0}, SynthConfig(), seed=0, srgb_camera_probability=0.5)
    identity = [torch.allclose(m, torch.eye(3), atol=1e-4) for m in mixed.batch(5)["to_srgb"]]
    assert 0 < sum(identity) < len(identity)
    sharp = validation_batches(images[:2], 64, None, srgb_camera=True)
    torch.testing.assert_close(sharp[0]["to_srgb"], torch.eye(3).expand(2, 3, 3), atol=1e-4, rtol=0)


def test_a_config_with_an_srgb_camera_probability_outside_0_1_is_refused(tmp_path):
    config = tmp_path / "bad.yaml"
    shipped = CONFIG_DIR / "rddm-tiny.yaml"
    text = shipped.read_text(encoding="utf-8") + "\nsrgb_camera_probability: 1.5\n"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(RddmError, match="bad.yaml: invalid training config .*srgb_camera_probability"):
        load_config(config)


def test_the_restored_end_can_have_its_own_loss_weights(photos, tmp_path):
    """``restored_loss`` weighs the restored end (strength 1) alone: a HaarPSI term there is computed
    and logged for that end only and adds to the loss exactly its value; the fidelity end keeps
    ``loss``'s weights."""
    plain = mini_config(photos, 1)
    weights = {**plain.loss, "haarpsi": 1.0}
    train(dataclasses.replace(plain, restored_loss=weights), tmp_path / "perceptual", progress=False)
    train(plain, tmp_path / "plain", progress=False)

    def first_step(name):
        records = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        return next(r for r in records if "loss" in r)

    with_term, without = first_step("perceptual"), first_step("plain")
    assert "fidelity_haarpsi" not in with_term and "restored_haarpsi" not in without
    assert 0 < with_term["restored_haarpsi"] < 1
    assert with_term["fidelity_srgb_l1"] == without["fidelity_srgb_l1"]  # the same batch and start
    assert with_term["loss"] == pytest.approx(without["loss"] + with_term["restored_haarpsi"], rel=1e-5)


def test_the_haarpsi_term_counts_a_pair_black_in_both_as_a_perfect_match():
    """piq's HaarPSI is infinite for a pair that is black in both (a run's loss went -inf on such a
    crop); the term counts it as 0 and keeps the loss and its gradient finite, the other images'
    terms as piq scores them."""
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 32, 32, generator=generator)
    target[1] = 0.0
    prediction = (target + 0.05 * torch.rand(3, 3, 32, 32, generator=generator)).clamp(0, 1)
    prediction[1] = -0.01  # renders black too
    prediction.requires_grad_(True)
    assert not torch.isfinite(piq.haarpsi(prediction[1:2].clamp(0, 1), target[1:2], data_range=1.0))
    loss = haarpsi_loss(prediction, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(prediction.grad).all()
    others = 1 - piq.haarpsi(prediction[[0, 2]].detach(), target[[0, 2]], data_range=1.0, reduction="none")
    assert float(loss) == pytest.approx(float(others.sum()) / 3, rel=1e-6)
    black = torch.zeros(2, 3, 32, 32, requires_grad=True)
    assert float(haarpsi_loss(black, black.detach())) == 0.0


def test_a_config_with_an_unknown_loss_term_is_refused(tmp_path):
    config = tmp_path / "bad.yaml"
    shipped = CONFIG_DIR / "rddm-tiny.yaml"
    text = shipped.read_text(encoding="utf-8") + "\nrestored_loss: {srgb_l1: 1.0, lpips: 1.0}\n"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(
        RddmError, match=r"bad.yaml: invalid training config .*unknown loss terms \['lpips'\]"
    ):
        load_config(config)


def test_a_config_with_an_unknown_saturation_mode_is_refused(tmp_path):
    config = tmp_path / "bad.yaml"
    shipped = CONFIG_DIR / "rddm-tiny.yaml"
    config.write_text(shipped.read_text(encoding="utf-8") + "\nsaturation_mode: soft\n", encoding="utf-8")
    with pytest.raises(RddmError, match="bad.yaml: invalid training config .*saturation_mode"):
        load_config(config)


def test_a_folders_unet_can_start_afresh_with_its_own_norm(photos, tmp_path):
    """``reset_unet`` keeps a model folder's RVAE (adapters included) and null prompt, starts the
    UNet fresh with ``unet_norm``, and keeps the old UNet's output bias (so the restored end starts
    where the old model's was when its UNet's features had died); the choice survives saving."""
    from rddm.model.norm import AffineNorm, PixelGroupNorm

    old_folder = train(mini_config(photos, 2), tmp_path / "old", progress=False)
    old = load_pipeline(old_folder)
    model = {**MINI_MODEL, "from_folder": str(old_folder), "reset_unet": True, "unet_norm": "pixel"}
    config = dataclasses.replace(mini_config(photos, 2), model=model)
    fresh = starting_model(config)
    for mine, theirs in zip(fresh.rvae.state_dict().items(), old.rvae.state_dict().items(), strict=True):
        assert mine[0] == theirs[0]
        torch.testing.assert_close(mine[1], theirs[1], rtol=0, atol=0)
    torch.testing.assert_close(fresh.null_prompt, old.null_prompt)
    assert not fresh.unet.conv_out.weight.any()
    torch.testing.assert_close(fresh.unet.conv_out.bias, old.unet.conv_out.bias)
    norms = [type(m) for m in fresh.unet.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and set(norms) == {PixelGroupNorm}
    assert {type(m) for m in fresh.rvae.modules() if isinstance(m, torch.nn.GroupNorm)} == {AffineNorm}
    fresh.save_pretrained(tmp_path / "saved")
    loaded = load_pipeline(tmp_path / "saved")
    assert loaded.info["unet_norm"] == "pixel"
    assert {type(m) for m in loaded.unet.modules() if isinstance(m, torch.nn.GroupNorm)} == {PixelGroupNorm}
    with pytest.raises(ValueError, match="unet_norm must be none, pixel or group"):
        starting_model(
            dataclasses.replace(
                config, model={**model, "reset_unet": False, "from_folder": None, "unet_norm": "layer"}
            )
        )


def test_the_config_sets_how_convolutions_pad_a_folders_model_too(photos, tmp_path):
    """``model.padding_mode`` (rddm.model.padding: the RVAE's) for fresh weights and for a folder's model;
    the trained model's folder keeps it."""
    config = dataclasses.replace(mini_config(photos, 2), model={**MINI_MODEL, "padding_mode": "replicate"})
    folder = train(config, tmp_path / "fresh", progress=False)
    trained = load_pipeline(folder)
    assert trained.info["padding_mode"] == "replicate"
    assert pad_modes(trained.rvae) == {"replicate"}
    again = starting_model(
        dataclasses.replace(
            config, model={**MINI_MODEL, "from_folder": str(folder), "padding_mode": "reflect"}
        )
    )
    assert again.info["padding_mode"] == "reflect"
    assert pad_modes(again.rvae) == {"reflect"}
    assert pad_modes(again.unet) == {"zeros"}
    unet = starting_model(
        dataclasses.replace(
            config, model={**MINI_MODEL, "from_folder": str(folder), "unet_padding_mode": "replicate"}
        )
    )
    assert unet.info["unet_padding_mode"] == "replicate" and unet.info["padding_mode"] == "replicate"
    assert pad_modes(unet.unet) == {"replicate"}
    fresh = starting_model(dataclasses.replace(config, model={**MINI_MODEL, "unet_padding_mode": "reflect"}))
    assert fresh.info["unet_padding_mode"] == "reflect" and "padding_mode" not in fresh.info
    assert pad_modes(fresh.unet) == {"reflect"}
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        starting_model(dataclasses.replace(config, model={**MINI_MODEL, "padding_mode": "circular"}))


def test_the_log_shows_a_unet_whose_features_died(photos, tmp_path):
    """``unet_active``: the share of the UNet's last activations that are not ~0; a UNet whose
    features were driven far negative (as the norm-free step-8000 rddm-tiny's were) logs ~0."""
    folder = train(mini_config(photos, 2), tmp_path / "alive", progress=False)
    records = [json.loads(line) for line in (tmp_path / "alive/log.jsonl").read_text().splitlines()]
    assert all(r["unet_active"] > 0.5 for r in records if "loss" in r)
    dead = load_pipeline(folder)
    with torch.no_grad():  # what the shipped model's last up block does: features near -3000
        dead.unet.up_blocks[-1].resnets[-1].conv2.bias.fill_(-1e4)
    dead.save_pretrained(tmp_path / "dead-model")
    model = {**MINI_MODEL, "from_folder": str(tmp_path / "dead-model")}
    config = dataclasses.replace(mini_config(photos, 1), model=model)
    train(config, tmp_path / "dead", progress=False)
    records = [json.loads(line) for line in (tmp_path / "dead/log.jsonl").read_text().splitlines()]
    assert [r["unet_active"] for r in records if "loss" in r] == [0.0]


def test_a_folders_model_grows_refine_blocks_that_start_as_the_identity(photos, tmp_path):
    """``model.grow`` adds refine blocks to a trained model's RVAE decoder: every weight and adapter
    is kept, the new blocks start as the identity (the grown model restores exactly as the old one),
    they learn, and the exported folder loads with them."""
    config = mini_config(photos, 2, model={**MINI_MODEL, "padding_mode": "replicate"})
    folder = train(config, tmp_path / "small", progress=False)
    old = load_pipeline(folder)
    grow = {**MINI_MODEL, "from_folder": str(folder), "grow": {"refine_blocks": 2}}
    grown = starting_model(dataclasses.replace(config, model=grow))
    assert len(grown.rvae.refine) == 2 and grown.rvae.config.refine_blocks == 2
    assert pad_modes(grown.rvae) == {"replicate"}  # the folder's padding reaches the new blocks
    torch.manual_seed(1)
    planes = torch.rand(2, 4, 16, 16)
    with torch.no_grad():
        for pattern in ("RGGB", "GBRG"):
            old.activate_adapter(pattern)
            grown.activate_adapter(pattern)
            assert torch.equal(grown.rvae(planes, pattern), old.rvae(planes, pattern))
            latent = old.rvae.encode(planes)[0]
            prompt = old.null_prompt.expand(2, -1, -1)
            assert torch.equal(
                grown.unet(latent, 499, encoder_hidden_states=prompt).sample,
                old.unet(latent, 499, encoder_hidden_states=prompt).sample,
            )
    folder = train(dataclasses.replace(config, model=grow), tmp_path / "grown", progress=False)
    trained = load_pipeline(folder)
    assert trained.rvae.config.refine_blocks == 2
    assert all(float(block.conv2.weight.abs().max()) > 0 for block in trained.rvae.refine)  # they learned
    bad = {**grow, "grow": {"refine_blocks": 1, "width": 64}}
    with pytest.raises(ValueError, match="only add refine_blocks"):
        starting_model(dataclasses.replace(config, model=bad))
    again = {**grow, "from_folder": str(tmp_path / "grown" / "model")}
    with pytest.raises(ValueError, match="already has 2 refine blocks"):
        starting_model(dataclasses.replace(config, model=again))


def test_a_canonical_run_trains_on_one_pattern_with_the_same_crops(photos, tmp_path):
    model = {**MINI_MODEL, "adapters": False, "canonical_pattern": "rggb"}
    config = mini_config(photos, 2, model=model)
    config.stages[0].train = ["rvae_encoder", "rvae_decoder", "unet"]
    images = load_sources(str(photos), 900)
    mixed = PairBatches(images, 32, 4, config.noise, SynthConfig(), seed=3)
    canonical = PairBatches(images, 32, 4, config.noise, SynthConfig(), seed=3, canonical_pattern="rggb")
    patterns = set()
    for step in range(8):  # each batch starts from the same crop; only RGGB mosaics
        a, b = mixed.batch(step), canonical.batch(step)
        patterns.add(a["pattern"])
        assert b["pattern"] == "RGGB"
        assert torch.equal(a["target"][0], b["target"][0]) and torch.equal(a["to_srgb"][0], b["to_srgb"][0])
    assert len(patterns) > 1
    for batch in validation_batches(images[-2:], 64, canonical_pattern="RGGB"):
        assert batch["pattern"] == "RGGB"

    folder = train(config, tmp_path / "run", progress=False)
    pipeline = load_pipeline(folder)
    assert pipeline.adapters == () and pipeline.info["canonical_pattern"] == "RGGB"
    assert pipeline.route_pattern("GRBG") == ("RGGB", 0, 1)


def test_a_canonical_pattern_needs_a_model_without_adapters(tmp_path):
    config = yaml.safe_load((CONFIG_DIR / "rddm-tiny.yaml").read_text())
    config["model"]["canonical_pattern"] = "RGGB"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(RddmError, match="canonical_pattern needs model.adapters: false"):
        load_config(path)
    config["model"]["canonical_pattern"] = "RGBG"
    config["model"]["adapters"] = False
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(RddmError, match="unknown CFA pattern"):
        load_config(path)


def test_a_folders_model_becomes_canonical_with_its_adapter_merged(photos, tmp_path):
    """``model.canonical_pattern`` on a folder with adapters: that pattern's adapter is merged into
    the model's own weights and the others dropped, so the new model restores that pattern exactly
    as the old one did with its adapter; it trains on that pattern and shifts the others onto it."""
    config = mini_config(photos, 2)
    folder = train(config, tmp_path / "small", progress=False)
    old = load_pipeline(folder)
    with torch.no_grad():  # adapters that change something, as after longer training
        for model in (old.unet, old.rvae):
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    old.save_pretrained(folder)
    model = {**MINI_MODEL, "from_folder": str(folder), "canonical_pattern": "GRBG"}
    stage = dataclasses.replace(config.stages[0], train=["rvae_encoder", "rvae_decoder", "unet"])
    canonical = dataclasses.replace(config, model=model, stages=[stage])
    raw = random_raw(48, 64, "GRBG")
    expected = old(raw, 0.5, tile_size=32, tile_overlap=8)
    new = starting_model(canonical)
    assert new.adapters == () and new.info["canonical_pattern"] == "GRBG"
    np.testing.assert_allclose(new(raw, 0.5, tile_size=32, tile_overlap=8), expected, atol=2e-5)
    assert new.route_pattern("RGGB") == ("GRBG", 0, 1)
    trained = load_pipeline(train(canonical, tmp_path / "canonical", progress=False))
    assert trained.adapters == () and trained.info["canonical_pattern"] == "GRBG"
    again = {**model, "from_folder": str(tmp_path / "canonical" / "model"), "canonical_pattern": "RGGB"}
    with pytest.raises(ValueError, match="RGGB: the folder's model was trained on GRBG"):
        starting_model(dataclasses.replace(canonical, model=again))
    with pytest.raises(ValueError, match="has no RGGB adapter"):
        old.adapters = ("grbg",)
        canonical_from_adapter(old, "RGGB")
