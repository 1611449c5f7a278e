"""`rddm doctor`: what this installation has, for the installer's self-check and for bug reports."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from rddm import __version__

PACKAGES = ("torch", "diffusers", "peft", "rawpy", "numpy", "fastapi", "uvicorn", "PyQt6")
REQUIRE_LINE = 'require "rddm"'


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def darktable_facts() -> dict:
    """darktable's version and Lua API from ``darktable --version`` (None when not installed)."""
    program = shutil.which("darktable")
    if program is None:
        return {"found": False, "path": None, "version": None, "lua_api": None}
    try:
        text = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    version = re.search(r"this is darktable (\S+)", text)
    api = re.search(r"API version (\d+\.\d+\.\d+)", text)
    return {
        "found": True,
        "path": program,
        "version": version.group(1) if version else None,
        "lua_api": api.group(1) if api else None,
    }


def darktable_config(given: str | None = None) -> Path:
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "darktable"


def plugin_facts(config: Path) -> dict:
    script = config / "lua" / "rddm.lua"
    luarc = config / "luarc"
    required = (
        luarc.is_file() and REQUIRE_LINE in luarc.read_text(encoding="utf-8", errors="replace").splitlines()
    )
    return {"config": str(config), "installed": script.is_file(), "required_in_luarc": required}


def model_facts(model: str, device: str) -> dict:
    try:
        from rddm.model.registry import load_pipeline

        pipeline = load_pipeline(model).to(device)
    except Exception as error:  # a doctor reports, it does not fall over
        return {"name": model, "loads": False, "error": str(error)}
    return {
        "name": str(pipeline.info.get("name", model)),
        "loads": True,
        "trained": bool(pipeline.info.get("trained", False)),
        "device": str(pipeline.device),
        "dtype": str(pipeline.dtype).replace("torch.", ""),
    }


def device_facts() -> dict:
    try:
        import torch
    except ImportError as error:
        return {"cuda": False, "error": str(error)}
    from rddm.model.pipeline import cpu_has_bfloat16

    facts = {
        "cuda": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
        "cpu_bf16": cpu_has_bfloat16(),  # `--precision bf16` runs faster than fp32 on this CPU
    }
    if facts["cuda"]:
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def report(model: str = "rddm-tiny", device: str = "auto", config: str | None = None) -> dict:
    facts = {
        "rddm": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": {name: _version(name) for name in PACKAGES},
        "device": device_facts(),
        "model": model_facts(model, device),
        "darktable": darktable_facts(),
        "plugin": plugin_facts(darktable_config(config)),
    }
    problems = []
    if not facts["model"]["loads"]:
        problems.append(f"the model {model} does not load: {facts['model']['error']}")
    darktable = facts["darktable"]
    if not darktable["found"]:
        problems.append("darktable is not installed (the plugin needs darktable 4.2 or later)")
    elif darktable["lua_api"] and int(darktable["lua_api"].split(".")[0]) != 9:
        problems.append(f"darktable's Lua API is {darktable['lua_api']}; the plugin needs 9.x")
    if darktable["found"] and not (facts["plugin"]["installed"] and facts["plugin"]["required_in_luarc"]):
        problems.append(
            f"the plugin is not installed in {facts['plugin']['config']} (run installers/install.sh)"
        )
    facts["problems"] = problems
    return facts


def format_report(facts: dict) -> str:
    packages = ", ".join(f"{name} {version or 'missing'}" for name, version in facts["packages"].items())
    model = facts["model"]
    model_line = (
        f"{model['name']} loads on {model['device']} ({model['dtype']}, "
        f"{'trained' if model['trained'] else 'UNTRAINED'})"
        if model["loads"]
        else f"{model['name']} does not load: {model['error']}"
    )
    device = facts["device"]
    darktable = facts["darktable"]
    plugin = facts["plugin"]
    lines = [
        f"rddm {facts['rddm']} on Python {facts['python']} ({facts['platform']})",
        f"packages: {packages}",
        f"device: {'CUDA ' + device.get('gpu', '') if device.get('cuda') else 'CPU'} "
        f"({device.get('threads')} threads"
        + (
            ", bfloat16 instructions: --precision bf16 is faster"
            if device.get("cpu_bf16") and not device.get("cuda")
            else ""
        )
        + ")",
        f"model: {model_line}",
        "darktable: "
        + (
            f"{darktable['version']} (Lua API {darktable['lua_api']}) at {darktable['path']}"
            if darktable["found"]
            else "not found"
        ),
        f"plugin: {'installed' if plugin['installed'] else 'not installed'} in {plugin['config']}"
        + (", required in luarc" if plugin["required_in_luarc"] else ", not in luarc"),
    ]
    lines += [f"problem: {problem}" for problem in facts["problems"]] or ["all good"]
    return "\n".join(lines)
