"""`rddm doctor`: the installation's self-check, as text and JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

RDDM = str(Path(sys.executable).parent / "rddm")


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RDDM, "doctor", *args], capture_output=True, text=True, timeout=300)


def test_doctor_reports_the_model_darktable_and_the_plugin(tmp_path):
    config = tmp_path / "darktable"
    result = doctor("--json", "--darktable-config", str(config))
    facts = json.loads(result.stdout)
    assert facts["model"]["loads"] and facts["model"]["trained"] and facts["model"]["name"] == "rddm-tiny"
    assert facts["packages"]["torch"] and facts["packages"]["fastapi"]
    assert facts["plugin"] == {"config": str(config), "installed": False, "required_in_luarc": False}
    if shutil.which("darktable"):
        assert facts["darktable"]["lua_api"].startswith("9.")
        assert result.returncode == 1
        assert facts["problems"] == [f"the plugin is not installed in {config} (run installers/install.sh)"]
        (config / "lua").mkdir(parents=True)
        (config / "lua" / "rddm.lua").write_text("-- plugin")
        (config / "luarc").write_text('-- mine\nrequire "rddm"\n')
        healthy = doctor("--darktable-config", str(config))
        assert healthy.returncode == 0 and healthy.stdout.rstrip().endswith("all good")
        assert "plugin: installed in" in healthy.stdout and "required in luarc" in healthy.stdout
    else:
        assert facts["problems"][0].startswith("darktable is not installed")


def test_doctor_names_a_model_that_does_not_load(tmp_path):
    result = doctor("--model", str(tmp_path / "no-model"), "--darktable-config", str(tmp_path))
    assert result.returncode == 1
    assert (
        "does not load" in result.stdout and "no-model" in result.stdout and "Traceback" not in result.stderr
    )
