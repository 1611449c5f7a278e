"""The plugin in the real darktable 4.2.1 under Xvfb, against a real engine with the shipped model."""

from __future__ import annotations

import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile

from tests.conftest import REPO, shared_data
from tests.plugin.harness import lua_string, require_darktable_gui, run_darktable

pytestmark = pytest.mark.darktable

RDDM = Path(sys.executable).parent / "rddm"
SAMPLE = REPO / "engine" / "rddm" / "data" / "sample.dng"
BLEND = "gz10eJxjYGBgYAFiCQYYOOHEgAZY0QVwggZ7CB6pfOygYtaVAyCMi08IAAB/xiOk"


def edit_style(path: Path, exposure_ev: float) -> Path:
    """A darktable style: exposure (module v6) and denoise (profiled) (v1 params, which darktable
    converts): the photographer's edit of the RAW in the tests."""
    exposure = (
        struct.pack("<iffff", 0, -0.000244140625, exposure_ev, 50.0, -4.0) + struct.pack("<i", 0)
    ).hex()
    denoise = struct.pack("<ff3f3fi", 1.0, 1.0, -1, -1, -1, -1, -1, -1, 0).hex()
    plugins = "".join(
        f"<plugin><num>{num}</num><module>{version}</module><operation>{operation}</operation>"
        f"<op_params>{params}</op_params><enabled>1</enabled><blendop_params>{BLEND}</blendop_params>"
        "<blendop_version>11</blendop_version><multi_priority>0</multi_priority><multi_name></multi_name></plugin>"
        for num, version, operation, params in (
            (0, 6, "exposure", exposure),
            (1, 1, "denoiseprofile", denoise),
        )
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<darktable_style version="1.0"><info><name>rddm-test-edit'
        f"</name><description>test</description></info><style>{plugins}</style></darktable_style>\n"
    )
    return path


@pytest.fixture(scope="module")
def engine_env(tmp_path_factory):
    """A real engine with the shipped rddm-tiny; darktable's commands find it through the env."""
    require_darktable_gui()
    state = tmp_path_factory.mktemp("state")
    started = subprocess.run(
        [str(RDDM), "engine", "start", "--state-dir", str(state)], capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stderr
    env = {"RDDM_STATE_DIR": str(state), "PATH": f"{RDDM.parent}:/usr/bin:/bin"}
    yield env
    subprocess.run([str(RDDM), "engine", "stop", "--state-dir", str(state)], capture_output=True, timeout=120)


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot ü 'x' $HOME `id` \"q\""
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "first frame.dng")
    (folder / "snapshot.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    return folder


def parse(results: dict, key: str) -> list[str]:
    return results.get(key, [])


def test_restore_import_group_tags_and_history(engine_env, shoot, tmp_path):
    real = shared_data("raw", "gopro_crops", "gopro_hero6_GOPR0024_crop_RGGB.dng")
    shutil.copy(real, shoot / "gopro.dng")
    style = edit_style(tmp_path / "edit.dtstyle", 1.5)
    driver = f"""
function main()
  local folder = {lua_string(shoot)}
  put("lib", dt.gui.libs.rddm ~= nil and dt.gui.libs.rddm.visible)
  local raw = dt.database.import(folder .. "/first frame.dng")
  local gopro = dt.database.import(folder .. "/gopro.dng")
  local jpeg = dt.database.import(folder .. "/snapshot.jpg")
  dt.styles.import({lua_string(style)})
  dt.styles.apply(find_style("rddm-test-edit"), raw)
  put("raw_history", history(raw, "raw-history"))
  raw.rating = 4
  raw.red = true
  raw.title = "Col du Galibier"
  dt.tags.attach(dt.tags.create("trip|alps"), raw)
  local restored, errors = rddm.restore_images({{raw, gopro, jpeg}}, {{strength = 0.3}})
  put("restored", #restored)
  for _, e in ipairs(errors) do put("error", e) end
  for _, image in ipairs(restored) do put("file", image.path .. "/" .. image.filename) end
  local first = restored[1]
  put("members", #raw:get_group_members())
  put("leader", first.group_leader.filename)
  put("rating", first.rating)
  put("red", first.red)
  put("title", first.title)
  for _, tag in ipairs(dt.tags.get_tags(first)) do put("tag", tag.name) end
  put("history", history(first, "restored-history"))
  local again = rddm.restore_images({{raw}}, {{strength = 0.8, format = "dng"}})
  put("again", again[1].filename)
  for _, tag in ipairs(dt.tags.get_tags(again[1])) do put("tag2", tag.name) end
  put("members_after", #raw:get_group_members())
  for _, member in ipairs(raw:get_group_members()) do put("member", member.filename) end
  put("again_leader", again[1].group_leader.filename)
end
"""
    results, completed, config = run_darktable(driver, env=engine_env)
    assert parse(results, "ok") == ["true"], (results, completed.stderr[-2000:])
    assert parse(results, "lib") == ["true"]
    assert not list((config / "styles").glob("rddm-[0-9]*"))  # no temporary style left behind
    assert "exposure=" in results["raw_history"][0] and "denoiseprofile=" in results["raw_history"][0]
    assert parse(results, "restored") == ["2"]
    assert parse(results, "error") == ["snapshot.jpg: not a camera RAW (jpg)"]
    files = [Path(p) for p in parse(results, "file")]
    assert [p.name for p in files] == ["first frame_rddm.dng", "gopro_rddm.dng"]
    for path in files:
        with tifffile.TiffFile(path) as tif:
            assert tif.pages[0].photometric == 34892
    assert parse(results, "members") == ["2"]
    assert parse(results, "leader") == ["first frame.dng"]
    assert parse(results, "rating") == ["4"] and parse(results, "red") == ["true"]
    assert parse(results, "title") == ["Col du Galibier"]
    tags = set(parse(results, "tag"))
    assert {"trip|alps", "rddm|restored", "rddm|strength|30"} <= tags
    history = results["history"][0]
    exposure = struct.pack("<f", 1.5).hex()
    assert f"exposure=00000000000080b9{exposure}" in history
    assert "denoiseprofile" not in history and "demosaic" not in history
    assert parse(results, "again") == ["first frame_rddm_1.dng"]
    assert "rddm|strength|80" in parse(results, "tag2")
    assert parse(results, "members_after") == ["3"]
    assert (shoot / "first frame.dng").read_bytes() == SAMPLE.read_bytes()


def test_export_target_renders_the_restored_dng(engine_env, shoot, tmp_path):
    style = edit_style(tmp_path / "edit.dtstyle", 1.0)
    driver = f"""
function main()
  local raw = dt.database.import({lua_string(shoot)} .. "/first frame.dng")
  dt.styles.import({lua_string(style)})
  dt.styles.apply(find_style("rddm-test-edit"), raw)
  dt.gui.selection({{raw}})
  dt.gui.action("lib/export/export", 0, "", "", 1.0)
  for _ = 1, 600 do
    local f = io.open({lua_string(shoot)} .. "/rddm/first frame_rddm.jpg", "rb")
    if f then f:close(); put("exported", "yes"); return end
    dt.control.sleep(100)
  end
  put("exported", "no")
end
"""
    results, completed, _ = run_darktable(
        driver,
        env=engine_env,
        conf={
            "plugins/lighttable/export/storage_name": "rddm_export",
            "plugins/lighttable/export/format_name": "jpeg",
        },
    )
    assert parse(results, "ok") == ["true"], (results, completed.stderr[-2000:])
    assert parse(results, "exported") == ["yes"]
    output = shoot / "rddm" / "first frame_rddm.jpg"
    assert output.read_bytes()[:3] == b"\xff\xd8\xff"
    assert not list(shoot.glob("*_rddm*.dng"))  # the intermediate DNG lived in a temporary folder


def test_a_broken_engine_path_gives_one_message_and_darktable_goes_on(engine_env, shoot):
    driver = f"""
function main()
  dt.preferences.write("rddm", "executable", "file", "/nonexistent/bin/rddm")
  local raw = dt.database.import({lua_string(shoot)} .. "/first frame.dng")
  local restored, errors = rddm.restore_images({{raw}}, {{}})
  put("restored", #restored)
  for _, e in ipairs(errors) do put("error", e) end
end
"""
    results, completed, _ = run_darktable(driver, env=engine_env)
    assert completed.returncode == 0
    assert parse(results, "ok") == ["true"], (results, completed.stderr[-2000:])
    assert parse(results, "restored") == ["0"]
    assert parse(results, "error") == [
        "rddm: /nonexistent/bin/rddm does not exist (preferences > lua options)"
    ]


def test_an_engine_that_fails_gives_its_message(engine_env, shoot, tmp_path):
    fake = tmp_path / "rddm"
    fake.write_text("#!/bin/sh\necho 'error: the engine did not start: CUDA out of memory' >&2\nexit 2\n")
    fake.chmod(0o755)
    driver = f"""
function main()
  dt.preferences.write("rddm", "executable", "file", {lua_string(fake)})
  local raw = dt.database.import({lua_string(shoot)} .. "/first frame.dng")
  local restored, errors = rddm.restore_images({{raw}}, {{}})
  put("restored", #restored)
  for _, e in ipairs(errors) do put("error", e) end
end
"""
    results, completed, _ = run_darktable(driver, env=engine_env)
    assert parse(results, "ok") == ["true"], (results, completed.stderr[-2000:])
    assert parse(results, "error") == ["the engine did not start: CUDA out of memory"]


def test_lighttable_screenshot(engine_env, shoot):
    """The README's picture of the module: darktable's lighttable after a restore, under Xvfb."""
    out = REPO / "out" / "lighttable.png"
    out.parent.mkdir(exist_ok=True)
    out.unlink(missing_ok=True)
    grab = f"{sys.executable} -c 'import os, sys; from PIL import ImageGrab; "
    grab += 'ImageGrab.grab(xdisplay=os.environ["DISPLAY"]).save(sys.argv[1])\' '
    driver = f"""
function main()
  local raw = dt.database.import({lua_string(shoot)} .. "/first frame.dng")
  dt.gui.libs.rddm.expanded = true
  put("slider", math.floor(rddm.widgets().strength.value + 0.5))
  local restored = rddm.restore_images({{raw}}, {{strength = 0.5}})
  put("restored", #restored)
  dt.gui.selection({{raw}})
  dt.control.sleep(2500)
  put("grab", dt.control.execute({lua_string(grab)} .. {lua_string(shlex.quote(str(out)))}))
end
"""
    window = {"ui_last/window_w": "1280", "ui_last/window_h": "800", "ui_last/maximized": "true"}
    results, completed, _ = run_darktable(driver, env=engine_env, conf=window)
    assert parse(results, "ok") == ["true"], (results, completed.stderr[-2000:])
    assert parse(results, "restored") == ["1"] and parse(results, "grab") == ["0"]
    assert parse(results, "slider") == ["50"]
    from PIL import Image

    with Image.open(out) as shot:
        assert shot.size == (1280, 800)
        assert len(shot.convert("L").getcolors(1 << 16) or []) > 50  # a rendered window, not a blank screen
