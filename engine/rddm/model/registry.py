"""Model folders: the format, saving, loading with clear errors, and the named models.

A model folder::

    model_index.json                 format_version, name, trained, timestep, adapters, ...
    rvae/config.json                 RawVAE configuration
    rvae/model.safetensors           its base weights (no LoRA)
    unet/config.json, unet/model.safetensors
    scheduler/scheduler_config.json  DDPM schedule (for the one-step x0 formula)
    null_prompt.safetensors          the stored text conditioning (no text encoder at run time)
    adapters/<pattern>.safetensors   one CMB-LoRA adapter per Bayer pattern ("unet."/"rvae." keys)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rddm import __version__
from rddm.errors import RddmError
from rddm.model.lora import (
    adapter_weights,
    add_pattern_adapter,
    base_weights,
    load_adapter_weights,
)
from rddm.model.norm import use_norm
from rddm.model.padding import use_padding
from rddm.model.pipeline import RDDMPipeline
from rddm.model.rvae import RawVAE

FORMAT_VERSION = 1
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = "rddm-tiny"


class ModelLoadError(RddmError):
    """A model folder is missing, incomplete, corrupt or of another format version."""


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A shipped model's name, a local folder, or a Hugging Face hub id (only then downloaded)."""
    text = str(name_or_path)
    shipped = MODELS_DIR / text
    if "/" not in text and shipped.is_dir():
        return shipped
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{path}: a model is a folder, not a file")
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return _download(text)
    known = sorted(p.name for p in MODELS_DIR.iterdir() if p.is_dir()) if MODELS_DIR.is_dir() else []
    raise ModelLoadError(f"{text}: no such model folder (shipped models: {', '.join(known) or 'none'})")


def _download(hub_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id))
    except Exception as error:  # network, authentication, missing repository: one line for the user
        raise ModelLoadError(f"{hub_id}: cannot download from the Hugging Face hub ({error})") from None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelLoadError(f"{path}: missing (not an rddm model folder?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{path}: not valid JSON ({error.__class__.__name__})") from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelLoadError(f"{path}: missing weights file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: corrupt weights ({str(error).splitlines()[0]})") from None


def _load_into(model: torch.nn.Module, weights: dict, path: Path) -> None:
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # tensor shapes differ from the configuration's
        detail = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), "")
        raise ModelLoadError(f"{path}: weights do not fit the configuration ({detail})") from None
    missing = [key for key in missing if "lora_" not in key]  # adapters load from their own files
    if missing or unexpected:
        detail = f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}"
        raise ModelLoadError(f"{path}: weights do not fit the configuration ({detail})")


def build_pipeline(
    rvae_config: dict,
    unet_config: dict,
    *,
    null_prompt: torch.Tensor,
    scheduler: DDPMScheduler | None = None,
    patterns: tuple[str, ...] = (),
    lora_rank: int = 4,
    info: dict | None = None,
    timestep: int = 999,
    unet_norm: str | None = None,
    padding_mode: str | None = None,
    unet_padding_mode: str | None = None,
) -> RDDMPipeline:
    """A pipeline with freshly initialised weights (for training and tests). The UNet's blocks
    normalise as the RVAE's (``rvae.norm_kind``) unless ``unet_norm`` (``none``, ``pixel``,
    ``group``) says otherwise; the RVAE's convolutions pad with zeros unless ``padding_mode``
    (``replicate``, ``reflect``: see :mod:`rddm.model.padding`) says otherwise, and the UNet's
    likewise with ``unet_padding_mode``. These choices are kept in the model index."""
    rvae = RawVAE.from_config(rvae_config)
    unet = UNet2DConditionModel.from_config(unet_config)
    if unet_norm not in (None, "none", "pixel", "group"):
        raise ValueError(f"unet_norm must be none, pixel or group, not {unet_norm!r}")
    use_norm(unet, unet_norm or rvae.norm_kind)
    names = tuple(add_pattern_adapter(unet, rvae, p, lora_rank) for p in patterns)
    info = {"name": "untitled", "trained": False, "lora_rank": lora_rank, **(info or {})}
    if unet_norm is not None:
        info["unet_norm"] = unet_norm
    if padding_mode is not None:
        use_padding(padding_mode, rvae)  # after the adapters: their convolutions too
        info["padding_mode"] = padding_mode
    if unet_padding_mode is not None:
        use_padding(unet_padding_mode, unet)  # after the adapters: their convolutions too
        info["unet_padding_mode"] = unet_padding_mode
    return RDDMPipeline(
        rvae,
        unet,
        scheduler or DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        null_prompt,
        timestep=timestep,
        adapters=names,
        info=info,
    )


def save_pipeline(pipeline: RDDMPipeline, folder: str | os.PathLike) -> Path:
    """Write ``pipeline`` as a model folder (see the module docstring)."""
    folder = Path(folder)
    pipeline.unmerge_adapters()  # the layers' own weights, not one adapter's merged into them
    for part in ("rvae", "unet", "scheduler", "adapters"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    for name, model in (("rvae", pipeline.rvae), ("unet", pipeline.unet)):
        model.save_config(folder / name)
        save_file(base_weights(model), str(folder / name / "model.safetensors"))
    pipeline.scheduler.save_config(folder / "scheduler")
    save_file(
        {"null_prompt": pipeline.null_prompt.float().cpu().contiguous()},
        str(folder / "null_prompt.safetensors"),
    )
    for name in pipeline.adapters:
        weights = {f"unet.{k}": v for k, v in adapter_weights(pipeline.unet, name).items()}
        weights |= {f"rvae.{k}": v for k, v in adapter_weights(pipeline.rvae, name).items()}
        save_file(weights, str(folder / "adapters" / f"{name}.safetensors"))
    index = {
        "_class_name": "RDDMPipeline",
        "format_version": FORMAT_VERSION,
        "rddm_version": __version__,
        **pipeline.info,
        "timestep": pipeline.timestep,
        "adapters": list(pipeline.adapters),
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=1))
    return folder


def build_from_info(
    rvae_config: dict,
    unet_config: dict,
    info: dict,
    *,
    null_prompt: torch.Tensor,
    scheduler: DDPMScheduler,
    patterns: tuple[str, ...],
    timestep: int,
) -> RDDMPipeline:
    """A fresh pipeline built as a saved model's index ``info`` says (its LoRA rank, UNet
    normalisation and padding modes): for loading a folder and for growing a loaded model."""
    return build_pipeline(
        rvae_config,
        unet_config,
        null_prompt=null_prompt,
        scheduler=scheduler,
        patterns=patterns,
        lora_rank=int(info.get("lora_rank", 4)),
        info=info,
        timestep=timestep,
        unet_norm=info.get("unet_norm"),
        padding_mode=info.get("padding_mode"),
        unet_padding_mode=info.get("unet_padding_mode"),
    )


def load_pipeline(name_or_path: str | os.PathLike = DEFAULT_MODEL) -> RDDMPipeline:
    """Load a model folder (or shipped name / hub id) on the CPU in float32.

    Raises ModelLoadError naming the file for anything missing, corrupt or of another version.
    """
    folder = resolve_model(name_or_path)
    index = _read_json(folder / "model_index.json")
    version = index.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{folder / 'model_index.json'}: model format {version}, this rddm reads format {FORMAT_VERSION}"
        )
    null_prompt = _read_weights(folder / "null_prompt.safetensors").get("null_prompt")
    if null_prompt is None:
        raise ModelLoadError(f"{folder / 'null_prompt.safetensors'}: no 'null_prompt' tensor")
    scheduler_config = _read_json(folder / "scheduler" / "scheduler_config.json")
    info = {
        k: v for k, v in index.items() if k not in ("_class_name", "format_version", "adapters", "timestep")
    }
    try:
        pipeline = build_from_info(
            _read_json(folder / "rvae" / "config.json"),
            _read_json(folder / "unet" / "config.json"),
            info,
            null_prompt=null_prompt,
            scheduler=DDPMScheduler.from_config(scheduler_config),
            patterns=tuple(name.upper() for name in index.get("adapters", [])),
            timestep=int(index.get("timestep", 999)),
        )
    except (TypeError, ValueError, KeyError) as error:
        raise ModelLoadError(f"{folder}: configuration cannot build the model ({error})") from None
    for name, model in (("rvae", pipeline.rvae), ("unet", pipeline.unet)):
        path = folder / name / "model.safetensors"
        _load_into(model, _remap_to_peft(model, _read_weights(path)), path)
    for name in pipeline.adapters:
        path = folder / "adapters" / f"{name}.safetensors"
        weights = _read_weights(path)
        for prefix, model in (("unet.", pipeline.unet), ("rvae.", pipeline.rvae)):
            part = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
            try:
                load_adapter_weights(model, name, part)
            except (ValueError, RuntimeError) as error:
                raise ModelLoadError(f"{path}: {str(error).splitlines()[0]}") from None
    return pipeline


def _remap_to_peft(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Plain weight names -> the names they have once peft wrapped a layer (``.base_layer.``)."""
    own = set(model.state_dict())
    remapped = {}
    for key, value in weights.items():
        if key not in own:
            module, _, leaf = key.rpartition(".")
            wrapped = f"{module}.base_layer.{leaf}"
            if wrapped in own:
                key = wrapped
        remapped[key] = value
    return remapped
