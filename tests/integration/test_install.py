"""The fresh-machine path: install into an empty HOME, restore in the real darktable, uninstall."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.plugin.harness import lua_string, require_darktable_gui, run_darktable

pytestmark = pytest.mark.darktable
INSTALL, UNINSTALL = REPO / "installers" / "install.sh", REPO / "installers" / "uninstall.sh"
USER_LUARC = "-- the photographer's own luarc line\n"


def sh(*args: str, env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", *args], capture_output=True, text=True, env=env, timeout=timeout)


def snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_install_restore_in_darktable_uninstall(tmp_path):
    require_darktable_gui()
    home = tmp_path / "home"
    config = home / ".config" / "darktable"
    config.mkdir(parents=True)
    (config / "luarc").write_text(USER_LUARC)
    before = snapshot(home)
    prefix = tmp_path / "rddm prefix"
    env = {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **{k: v for k, v in os.environ.items() if k.startswith(("PIP_", "http", "HTTP", "LANG", "LC_"))},
    }
    if shutil.which("python3", path=env["PATH"]) is None:
        pytest.skip("no python3 on the standard PATH")

    first = sh(str(INSTALL), "--prefix", str(prefix), "--from", str(REPO), "--cpu", env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    bin_dir = home / ".local" / "bin"
    assert (bin_dir / "rddm").resolve() == (prefix / "venv" / "bin" / "rddm").resolve()
    assert (bin_dir / "rddm-preview").is_symlink()
    assert (config / "lua" / "rddm.lua").read_bytes() == (REPO / "plugin/darktable/rddm.lua").read_bytes()
    assert (config / "luarc").read_text() == USER_LUARC + 'require "rddm"\n'
    assert f"lua/rddm/executable={bin_dir}/rddm" in (config / "darktablerc").read_text()
    assert "rddm-tiny loads on cpu (float32, trained)" in first.stdout

    second = sh(str(INSTALL), "--prefix", str(prefix), "--from", str(REPO), "--cpu", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (config / "luarc").read_text().count('require "rddm"') == 1
    assert (config / "darktablerc").read_text().count("lua/rddm/executable=") == 1

    shoot = tmp_path / "shoot ü"
    shoot.mkdir()
    shutil.copy(REPO / "engine" / "rddm" / "data" / "sample.dng", shoot / "frame one.dng")
    driver = f"""
function main()
  put("lib", dt.gui.libs.rddm ~= nil)
  local raw = dt.database.import({lua_string(shoot / "frame one.dng")})
  local restored, errors = rddm.restore_images({{raw}}, {{strength = 0.5}})
  put("restored", #restored)
  for _, e in ipairs(errors) do put("error", e) end
  put("members", #raw:get_group_members())
end
"""
    results, completed, _ = run_darktable(driver, env=env, config=config)
    (config / "lua" / "rddm_test_driver.lua").unlink()
    (config / "luarc").write_text(USER_LUARC + 'require "rddm"\n')
    stopped = subprocess.run(
        [str(bin_dir / "rddm"), "engine", "stop"], env=env, capture_output=True, text=True
    )
    assert results.get("ok") == ["true"], (results, completed.stderr[-2000:])
    assert results["lib"] == ["true"] and results["restored"] == ["1"] and results["members"] == ["2"]
    assert (shoot / "frame one_rddm.dng").is_file()
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped")

    removed = sh(str(UNINSTALL), "--prefix", str(prefix), env=env)
    assert removed.returncode == 0, removed.stderr
    assert not prefix.exists()
    assert not (bin_dir / "rddm").exists() and not (bin_dir / "rddm-preview").exists()
    assert not (config / "lua" / "rddm.lua").exists() and not (config / "lua" / "rddm").exists()
    assert (config / "luarc").read_text() == USER_LUARC
    rc = config / "darktablerc"  # created by the installer; darktable, ended by os.exit, left it so
    assert not rc.exists() or "lua/rddm/" not in rc.read_text()
    assert (shoot / "frame one.dng").is_file() and (shoot / "frame one_rddm.dng").is_file()
    left = snapshot(home) - before
    allowed = (".local", ".cache", ".config/darktable", ".config/gtk-3.0")  # darktable's, GTK's, the engine's
    assert all(path.startswith(allowed) for path in left), left
    assert not any("rddm" in path and "state" not in path for path in left), left


def test_clear_messages_for_bad_options(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = sh(str(INSTALL), "--frobnicate", env=env)
    assert result.returncode == 1 and "unknown option --frobnicate" in result.stderr
    result = sh(str(INSTALL), "--from", str(tmp_path), env=env)
    assert result.returncode == 1 and "is not an rddm source folder" in result.stderr
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as root: every folder is writable")
    result = sh(str(INSTALL), "--prefix", str(locked / "x"), "--from", str(REPO), env=env)
    assert result.returncode == 1 and "no write permission" in result.stderr


def test_uninstall_without_an_installation(tmp_path):
    result = sh(
        str(UNINSTALL),
        "--prefix",
        str(tmp_path / "none"),
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1 and "no rddm installation" in result.stderr
