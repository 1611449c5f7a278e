"""The training loop (HF accelerate: one CPU process here, `accelerate launch` for GPUs and nodes).

Every step draws a batch synthesized on the fly, runs both strength ends of the model and
minimises the weighted restoration loss of each. Checkpoints hold the weights, the optimiser and
the step; a resumed run continues exactly where the last checkpoint stood. Every checkpoint also
exports a loadable model folder (``<out>/model``).

Under ``accelerate launch`` (or ``torchrun``) with several processes, each process trains on its own
crops (the batch of step ``k`` of process ``p`` depends on the seed, ``k`` and ``p``) of one Bayer
pattern shared by all of them at that step, so that every process runs the same adapter; DDP looks
for unused parameters (the other adapters, a stage's frozen parts); the loss and the divergence
check are over all processes; only the main process validates, logs and saves, and every
checkpoint checks that the processes' weights are still the same.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from torch import nn

from rddm.errors import RddmError
from rddm.model.lora import adapter_name, base_weights
from rddm.model.padding import use_padding
from rddm.model.registry import build_from_info, build_pipeline, load_pipeline, save_pipeline
from rddm.raw.cfa import CFA_PATTERNS, check_pattern
from rddm.synth import SynthConfig
from rddm.train.config import Stage, TrainConfig
from rddm.train.data import PairBatches, load_sources, step_batches, validation_batches
from rddm.train.losses import psnr_srgb, restoration_loss


class TrainingDiverged(RddmError):
    """The loss is not finite or activations have run away (see ``TrainConfig.max_activation``)."""


class RDDMTrainer(nn.Module):
    """Both ends of the model in one module (what accelerate wraps)."""

    def __init__(self, pipeline):
        super().__init__()
        self.pipeline = pipeline
        self.rvae, self.unet = pipeline.rvae, pipeline.unet
        self.activation_absmax = torch.zeros(())
        self.unet_active = torch.ones(())
        last_norm = getattr(getattr(self.rvae, "decoder", None), "conv_norm_out", None)
        if last_norm is not None:  # the decoder's last features, watched for divergence
            last_norm.register_forward_pre_hook(self._watch)
        if getattr(self.unet, "conv_act", None) is not None:
            self.unet.conv_act.register_forward_hook(self._watch_unet)

    def _watch_unet(self, _module, _inputs, output) -> None:
        """The share of the UNet's last activations that are not ~0. A norm-free UNet can drive its
        features so negative that SiLU zeroes them all: its noise prediction is then one constant
        (the shipped step-8000 rddm-tiny: 5e-6 of them alive), with no other sign in the loss."""
        self.unet_active = (output.detach().abs() > 1e-3).float().mean()

    def _watch(self, _module, inputs) -> None:
        self.activation_absmax = torch.maximum(self.activation_absmax, inputs[0].detach().abs().max())

    def forward(self, planes: torch.Tensor, pattern: str, skip_keep: torch.Tensor | None = None):
        """Both ends for ``(B, 4, h, w)`` planes; ``skip_keep`` ``(B,)`` of 0/1 drops the encoder skip
        of some samples, so the decoder must also read the latent (where the diffusion step acts)."""
        self.pipeline.activate_adapter(pattern)
        latent, skip = self.rvae.encode(planes)
        self.activation_absmax = latent.detach().abs().max()
        if skip is not None and skip_keep is not None:
            skip = skip * skip_keep.to(skip)[:, None, None, None]
        alpha = self.pipeline.scheduler.alphas_cumprod[self.pipeline.timestep].to(latent)
        prompt = self.pipeline.null_prompt.to(latent).expand(latent.shape[0], -1, -1)
        eps = self.unet(latent, self.pipeline.timestep, encoder_hidden_states=prompt).sample
        restored = self.rvae.decode((latent - (1 - alpha).sqrt() * eps) / alpha.sqrt(), skip, planes, pattern)
        return self.rvae.decode(latent, skip, planes, pattern), restored


def trainable_parameters(pipeline, parts: list[str]) -> list[nn.Parameter]:
    """Mark the parameters of ``parts`` trainable (all others frozen) and return them."""
    groups = {
        "rvae_encoder": lambda name, model: (
            model is pipeline.rvae and name.startswith(("encoder.", "quant_conv."))
        ),
        "rvae_decoder": lambda name, model: (
            model is pipeline.rvae and name.startswith(("decoder.", "post_quant_conv.", "skip_", "refine."))
        ),
        "unet": lambda name, model: model is pipeline.unet,
    }
    unknown = set(parts) - set(groups) - {"adapters"}
    if unknown:
        raise ValueError(f"unknown trainable parts {sorted(unknown)}")
    chosen = []
    for model in (pipeline.rvae, pipeline.unet):
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                wanted = "adapters" in parts
            else:
                wanted = any(groups[part](name, model) for part in parts if part in groups)
            parameter.requires_grad_(wanted)
            if wanted:
                chosen.append(parameter)
    return chosen


def _stage_at(config: TrainConfig, step: int) -> tuple[int, Stage]:
    """(stage index, stage) for a global ``step``."""
    start = 0
    for index, stage in enumerate(config.stages):
        if step < start + stage.steps:
            return index, stage
        start += stage.steps
    return len(config.stages) - 1, config.stages[-1]


def _cosine(stage_steps: int, warmup: int = 50) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, stage_steps - warmup))))

    return factor


def starting_model(config: TrainConfig):
    """The starting model: a built folder (``model.from_folder``, e.g. rddm-sd21) or fresh weights.

    Fresh weights start with zeroed output convolutions: the RVAE's residual starts as exactly its
    bilinear base and the UNet's noise prediction as zero, instead of random images to unlearn.
    With ``model.reset_unet`` a folder's RVAE (with its adapters) and null prompt are kept and the
    UNet starts fresh (its adapters too), normalised as ``model.unet_norm`` says; its output
    convolution starts at zero weights and the old one's bias, so the old model's noise prediction
    is kept where the old UNet's features had died (see ``unet_active`` in the log).
    ``model.padding_mode`` sets how the RVAE's convolutions pad (see :mod:`rddm.model.padding`),
    ``model.unet_padding_mode`` the UNet's, a folder's model's too. ``model.grow`` (with
    ``from_folder``) adds refine blocks to the folder's RVAE (``{refine_blocks: N}``, see
    :class:`rddm.model.rvae.RawVAE`), started as the identity: the grown model restores as the old
    one did until it trains. ``model.canonical_pattern``: a model without adapters trained on that
    pattern only (a folder's model with adapters keeps that pattern's one, merged: see
    :func:`canonical_from_adapter`).
    """
    pipeline = _starting_weights(config)
    canonical = config.model.get("canonical_pattern")
    if canonical:  # trained on that pattern only; restores shift every other one onto it
        canonical = check_pattern(canonical)
        if pipeline.adapters:
            return canonical_from_adapter(pipeline, canonical)
        if pipeline.info.get("canonical_pattern", canonical) != canonical:
            raise ValueError(
                f"model.canonical_pattern {canonical}: the folder's model was trained on "
                f"{pipeline.info['canonical_pattern']}"
            )
        pipeline.info["canonical_pattern"] = canonical
    return pipeline


def _starting_weights(config: TrainConfig):
    model = config.model
    if model.get("from_folder") and not model.get("reset_unet"):
        pipeline = load_pipeline(model["from_folder"])
        if model.get("grow"):
            pipeline = grown(pipeline, model["grow"])
        if model.get("padding_mode"):  # a folder's model can learn to pad another way
            use_padding(model["padding_mode"], pipeline.rvae)
            pipeline.info["padding_mode"] = model["padding_mode"]
        if model.get("unet_padding_mode"):
            use_padding(model["unet_padding_mode"], pipeline.unet)
            pipeline.info["unet_padding_mode"] = model["unet_padding_mode"]
        return pipeline
    pipeline = _fresh(config)
    if model.get("from_folder"):
        old = load_pipeline(model["from_folder"])
        pipeline.rvae.load_state_dict(old.rvae.state_dict())
        pipeline.null_prompt = old.null_prompt.clone()
        with torch.no_grad():
            pipeline.unet.conv_out.weight.zero_()
            pipeline.unet.conv_out.bias.copy_(old.unet.conv_out.bias)
        return pipeline
    with torch.no_grad():
        for conv in (pipeline.rvae.decoder.conv_out, pipeline.unet.conv_out):
            conv.weight.zero_()
            conv.bias.zero_()
        # The skip projections start at zero so that loaded SD weights start unchanged; behind a
        # zeroed output convolution they would stay at zero (each one's gradient is proportional to
        # the other's weights), so a fresh model starts them at torch's default initialisation.
        for name in ("skip_half", "skip_full"):
            if hasattr(pipeline.rvae, name):
                getattr(pipeline.rvae, name).reset_parameters()
    return pipeline


def _plain_config(model) -> dict:
    """A diffusers model's config without its private keys: its "_use_default_values" would reset
    what the dict sets (refine_blocks, for one)."""
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def canonical_from_adapter(pipeline, pattern: str):
    """A model without adapters that restores ``pattern`` exactly as ``pipeline`` does with that
    pattern's adapter (merged into its own weights), to be trained on that pattern only: every
    other pattern is shifted onto it (``canonical_pattern`` in its index)."""
    pattern = check_pattern(pattern)
    if adapter_name(pattern) not in pipeline.adapters:
        raise ValueError(f"model.canonical_pattern: the folder's model has no {pattern} adapter")
    pipeline.activate_adapter(pattern, merged=True)
    plain = build_from_info(
        _plain_config(pipeline.rvae),
        _plain_config(pipeline.unet),
        {**pipeline.info, "canonical_pattern": pattern},
        null_prompt=pipeline.null_prompt.clone(),
        scheduler=pipeline.scheduler,
        patterns=(),
        timestep=pipeline.timestep,
    )
    for part in ("rvae", "unet"):
        getattr(plain, part).load_state_dict(base_weights(getattr(pipeline, part)))
    return plain


def grown(pipeline, grow: dict):
    """``pipeline`` with more refine blocks in its RVAE (``grow = {"refine_blocks": N}``, N more
    than it has), every trained weight (adapters too) kept and the new blocks the identity."""
    unknown = set(grow) - {"refine_blocks"}
    if unknown:
        raise ValueError(f"model.grow can only add refine_blocks, not {sorted(unknown)}")
    rvae_config = _plain_config(pipeline.rvae)
    before = rvae_config.get("refine_blocks", 0)
    if int(grow["refine_blocks"]) <= before:
        raise ValueError(f"model.grow: the model already has {before} refine blocks")
    pipeline.unmerge_adapters()
    bigger = build_from_info(
        {**rvae_config, "refine_blocks": int(grow["refine_blocks"])},
        _plain_config(pipeline.unet),
        pipeline.info,
        null_prompt=pipeline.null_prompt.clone(),
        scheduler=pipeline.scheduler,
        patterns=tuple(name.upper() for name in pipeline.adapters),
        timestep=pipeline.timestep,
    )
    bigger.unet.load_state_dict(pipeline.unet.state_dict())
    missing, unexpected = bigger.rvae.load_state_dict(pipeline.rvae.state_dict(), strict=False)
    new = list(bigger.rvae.refine)[before:]
    expected = {f"refine.{before + i}.{key}" for i, block in enumerate(new) for key in block.state_dict()}
    if unexpected or set(missing) != expected:
        detail = (unexpected or missing)[:2]
        raise ValueError(f"model.grow: the weights do not fit the grown model ({detail})")
    with torch.no_grad():
        for block in new:
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()
    return bigger


def _fresh(config: TrainConfig):
    model = config.model
    return build_pipeline(
        model["rvae"],
        model["unet"],
        null_prompt=torch.zeros(1, model.get("prompt_tokens", 1), model.get("prompt_dim", 32)),
        patterns=CFA_PATTERNS if model.get("adapters", True) else (),
        lora_rank=model.get("lora_rank", 4),
        info={"name": config.name},
        timestep=model.get("timestep", 999),
        unet_norm=model.get("unet_norm"),
        padding_mode=model.get("padding_mode"),
        unet_padding_mode=model.get("unet_padding_mode"),
    )


def _latest_checkpoint(out: Path) -> Path | None:
    checkpoints = sorted((out / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    return checkpoints[-1] if checkpoints else None


class _Run:
    """State of one training run: the model, the current stage's optimiser, the log."""

    def __init__(self, config: TrainConfig, out: Path, accelerator: Accelerator):
        self.config, self.out, self.accelerator = config, out, accelerator
        torch.manual_seed(config.seed)
        self.pipeline = starting_model(config)
        trainer = RDDMTrainer(self.pipeline)
        # DDP (several processes) reduces only the gradients of parameters that need one when it
        # wraps the model: all of them, so that a stage (or an adapter) may train any part later.
        # Each stage then freezes what it does not train (``trainable_parameters``).
        trainer.requires_grad_(True)
        self.trainer = accelerator.prepare(trainer)
        self.stage_index = -1
        self.step, self.seconds = 0, 0.0

    def enter_stage(self, index: int) -> None:
        stage = self.config.stages[index]
        parameters = trainable_parameters(self.pipeline, stage.train)
        optimizer = torch.optim.AdamW(
            parameters, lr=stage.learning_rate, weight_decay=self.config.weight_decay
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(stage.steps))
        self.optimizer, self.schedule = self.accelerator.prepare(optimizer, schedule)
        self.stage_index = index

    def save(self) -> None:
        self.check_processes_agree()
        if not self.accelerator.is_main_process:
            return
        folder = self.out / "checkpoints" / f"step_{self.step}"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": self.accelerator.unwrap_model(self.trainer).state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "step": self.step,
                "stage": self.stage_index,
                "seconds": self.seconds,
            },
            folder / "state.pt",
        )
        old = sorted((self.out / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
        for stale in old[: -self.config.keep_checkpoints]:
            shutil.rmtree(stale)
        self.pipeline.info.update(
            {
                "trained": True,
                "steps": self.step,
                "train_seconds": round(self.seconds),
                "config": self.config.name,
            }
        )
        export = self.out / "model.tmp"
        shutil.rmtree(export, ignore_errors=True)
        save_pipeline(self.pipeline, export)
        shutil.rmtree(self.out / "model", ignore_errors=True)
        export.rename(self.out / "model")

    def check_processes_agree(self) -> None:
        """With several processes: raise if their weights differ (a part whose gradients DDP does
        not reduce would train apart on each). Compares a float64 sum of each parameter."""
        if self.accelerator.num_processes < 2:
            return
        model = self.accelerator.unwrap_model(self.trainer)
        sums = torch.stack([parameter.detach().double().sum() for parameter in model.parameters()])
        every = self.accelerator.gather(sums.to(self.accelerator.device)[None]).cpu()
        differing = (every != every[0]).any(dim=0)
        if bool(differing.any()):
            names = [name for (name, _), bad in zip(model.named_parameters(), differing, strict=True) if bad]
            raise RddmError(
                f"the training processes' weights differ at step {self.step} ({len(names)} tensors, "
                f"first {names[0]}): their gradients are not all reduced"
            )

    def restore(self, checkpoint: Path) -> None:
        state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=False)
        self.accelerator.unwrap_model(self.trainer).load_state_dict(state["model"])
        self.enter_stage(state["stage"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.step, self.seconds = state["step"], state["seconds"]


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = True,
    max_steps: int | None = None,
    progress: bool = True,
) -> Path:
    """Run (or resume) training into ``out``; returns the exported model folder."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    # Inactive adapters and a stage's frozen parts get no gradient: DDP must not wait for them.
    accelerator = Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    main = accelerator.is_main_process
    if main:
        (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
    images = load_sources(config.data_dir, config.source_downscale_min_side)
    held_out = config.validation_images
    base = SynthConfig(
        exposure_range=tuple(config.exposure_range),
        defocus_probability=config.defocus_probability,
        downsample_probability=config.downsample_probability,
    )
    run = _Run(config, out, accelerator)
    canonical = run.pipeline.info.get("canonical_pattern")
    batches = PairBatches(
        images[:-held_out] if held_out else images,
        config.crop,
        config.batch_size,
        config.noise,
        base,
        config.seed,
        skip_dropout=config.skip_dropout,
        saturation_probability=config.saturation_probability,
        saturation_range=tuple(config.saturation_range),
        saturation_mode=config.saturation_mode,
        canonical_pattern=canonical,
        srgb_camera_probability=config.srgb_camera_probability,
    )
    validation = (
        validation_batches(images[-held_out:], 256, config.validation_iso, canonical_pattern=canonical)
        if held_out
        else []
    )
    checkpoint = _latest_checkpoint(out) if resume else None
    if checkpoint is not None:
        run.restore(checkpoint)
    end = min(config.total_steps, max_steps if max_steps is not None else config.total_steps)
    bar_off = not progress or not main
    with (
        (out / "log.jsonl" if main else Path(os.devnull)).open("a", encoding="utf-8") as log,
        tqdm(total=end, initial=run.step, unit="step", disable=bar_off) as bar,
    ):
        if not main:  # only the main process validates (it alone logs the scores)
            validation = []
        if validation and run.step == 0:  # the starting point, for the log's curve
            _log(log, {"step": 0, **_validate(run, validation)})
        stream = step_batches(batches, run.step, end, accelerator.process_index, config.data_workers)
        while run.step < end:
            index, stage = _stage_at(config, run.step)
            if index != run.stage_index:
                run.enter_stage(index)
            started = time.perf_counter()  # the wait for the batch counts too
            batch = next(stream)
            losses = _train_step(run, batch, stage)
            run.seconds += time.perf_counter() - started
            largest = losses["activation_absmax"]
            if not (math.isfinite(losses["loss"]) and largest <= config.max_activation):
                _log(log, {"step": run.step + 1, "diverged": True, **losses})
                raise TrainingDiverged(
                    f"training diverged at step {run.step + 1}: loss {losses['loss']:.4g}, activations up "
                    f"to {largest:.4g} (limit max_activation {config.max_activation:g}); lower the "
                    f"learning rate and resume from the last checkpoint in {out}"
                )
            run.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses['loss']:.4f}", stage=stage.name)
            if run.step % config.log_every == 0 or run.step == end:
                _log(log, {"step": run.step, "stage": stage.name, "seconds": round(run.seconds, 1), **losses})
            if validation and (run.step % config.validate_every == 0 or run.step == end):
                _log(log, {"step": run.step, **_validate(run, validation)})
            if run.step % config.checkpoint_every == 0 or run.step == end:
                accelerator.wait_for_everyone()
                run.save()
    accelerator.wait_for_everyone()  # no process returns before the main one has exported the model
    return out / "model"


def _train_step(run: _Run, batch: dict, stage: Stage) -> dict:
    device = run.accelerator.device
    planes, target, to_srgb = (
        batch[k].to(device, non_blocking=True) for k in ("planes", "target", "to_srgb")
    )
    run.trainer.train()
    fidelity, restored = run.trainer(planes, batch["pattern"], batch["skip_keep"].to(device))
    weights = run.config.loss
    loss_fidelity, parts = restoration_loss(fidelity, target, to_srgb, weights)
    restored_weights = run.config.restored_loss or weights
    loss_restored, parts_restored = restoration_loss(restored, target, to_srgb, restored_weights)
    loss = stage.fidelity_weight * loss_fidelity + stage.restored_weight * loss_restored
    run.optimizer.zero_grad(set_to_none=True)
    run.accelerator.backward(loss)
    run.accelerator.clip_grad_norm_(
        [p for g in run.optimizer.param_groups for p in g["params"]], run.config.gradient_clip
    )
    run.optimizer.step()
    run.schedule.step()
    model = run.accelerator.unwrap_model(run.trainer)
    losses = {
        "loss": float(loss.detach()),
        "activation_absmax": float(model.activation_absmax),
        "unet_active": round(float(model.unet_active), 4),
        "lr": run.schedule.get_last_lr()[0],
        **{f"fidelity_{k}": v for k, v in parts.items()},
        **{f"restored_{k}": v for k, v in parts_restored.items()},
    }
    return _over_processes(run.accelerator, losses)


def _over_processes(accelerator: Accelerator, losses: dict) -> dict:
    """With several processes: every figure averaged over them (the largest activation their
    largest), the same on every process, so that all of them stop together on a divergence."""
    if accelerator.num_processes < 2:
        return losses
    names = [name for name in losses if name != "lr"]
    values = torch.tensor([[losses[name] for name in names]], dtype=torch.float64, device=accelerator.device)
    every = accelerator.gather(values).cpu()
    merged = {name: float(every[:, index].mean()) for index, name in enumerate(names)}
    merged["activation_absmax"] = float(every[:, names.index("activation_absmax")].max())
    merged["unet_active"] = round(merged["unet_active"], 4)
    return {**losses, **merged}


def _validate(run: _Run, batches: list[dict]) -> dict:
    # The model itself, not DDP's wrapper: the main process validates alone, without collectives.
    return validation_scores(run.accelerator.unwrap_model(run.trainer), batches, run.accelerator.device)


@torch.no_grad()
def validation_scores(trainer: nn.Module, batches: list[dict], device: torch.device | str = "cpu") -> dict:
    """Mean PSNR (neutral sRGB) of both ends and their average on ``batches``: the log's
    ``val_psnr_fidelity`` / ``val_psnr_restored`` / ``val_psnr_half``."""
    trainer.eval()
    scores = {"fidelity": [], "restored": [], "half": []}
    for batch in batches:
        planes, target, to_srgb = (batch[k].to(device) for k in ("planes", "target", "to_srgb"))
        fidelity, restored = trainer(planes, batch["pattern"])
        scores["fidelity"] += psnr_srgb(fidelity, target, to_srgb).tolist()
        scores["restored"] += psnr_srgb(restored, target, to_srgb).tolist()
        scores["half"] += psnr_srgb((fidelity + restored) / 2, target, to_srgb).tolist()
    return {f"val_psnr_{k}": round(sum(v) / len(v), 3) for k, v in scores.items()}


def _log(handle, record: dict) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()
