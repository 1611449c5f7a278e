"""The plugin's logic in Lua 5.4 (lupa) with a darktable API double; commands run in a real shell."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import lupa.lua54 as lua54
import pytest

from tests.conftest import REPO

PLUGIN = REPO / "plugin" / "darktable"
HOSTILE = [
    "plain.dng",
    "with space.NEF",
    "quote'single.CR2",
    'quote"double.ARW',
    "dollar $HOME.dng",
    "back`tick`.dng",
    "semi;colon && rm -rf x.dng",
    "naïve ünïcödé 写真.RAF",
    "new\nline.dng",
    "-starts-with-dash.dng",
]

FAKE_DARKTABLE = r"""
local fake = { messages = {}, logs = {}, jobs = {}, imported = {}, executed = {}, prefs = {}, tags = {},
  events = {}, storages = {}, libs = {}, ending = false, sleeps = 0 }
local dt = {}
fake.dt = dt
dt.configuration = {
  api_version_major = 9, api_version_minor = 0, api_version_string = "9.0.0", has_gui = true,
}
dt.print = function(text) table.insert(fake.messages, text) end
dt.print_log = function(text) table.insert(fake.logs, text) end
dt.print_error = function(text) table.insert(fake.messages, "ERROR " .. text) end
dt.preferences = {
  read = function(module, name, kind) return fake.prefs[module .. "/" .. name] end,
  write = function(module, name, kind, value) fake.prefs[module .. "/" .. name] = value end,
  register = function(...) end,
}
dt.control = {
  execute = function(command)
    table.insert(fake.executed, command)
    local ok, how, code = os.execute(command)
    return (code or 0) * 256
  end,
  sleep = function(ms)
    fake.sleeps = fake.sleeps + 1
    if fake.on_sleep then fake.on_sleep(fake.sleeps) end
    os.execute("sleep " .. (ms / 1000))
  end,
  dispatch = function(f) f() end,
}
setmetatable(dt.control, { __index = function(t, key) if key == "ending" then return fake.ending end end })
local function new_image(path)
  local folder, name = path:match("^(.*)/([^/]+)$")
  fake.count = (fake.count or 0) + 1
  local image = { path = folder, filename = name, rating = 0, red = false, id = fake.count,
    group = nil, tags = {} }
  image.group_with = function(self, other) self.group = other.group or other end
  image.make_group_leader = function(self) self.leader = true end
  image.get_group_members = function(self)
    local leader, members = self.group or self, {}
    for _, other in ipairs(fake.all) do
      if (other.group or other) == leader then table.insert(members, other) end
    end
    return members
  end
  fake.all = fake.all or {}
  table.insert(fake.all, image)
  return image
end
fake.new_image = new_image
dt.database = {
  import = function(path)
    local f = io.open(path, "rb")
    if not f then error("darktable would have exited: " .. path) end
    f:close()
    local image = new_image(path)
    table.insert(fake.imported, image)
    return image
  end,
}
dt.tags = {
  create = function(name) fake.tags[name] = fake.tags[name] or { name = name }; return fake.tags[name] end,
  attach = function(tag, image) table.insert(image.tags, tag) end,
  get_tags = function(image) return image.tags end,
}
dt.styles = {
  create = function(image, name, description)
    return setmetatable({ name = name }, { __len = function() return 0 end })
  end,
  delete = function(style) end,
}
dt.gui = {
  create_job = function(text, cancellable, callback)
    local job = { text = text, percent = 0, valid = true, cancel = callback, percents = {} }
    setmetatable(job, { __newindex = function(t, k, v) rawset(t, k, v) end })
    table.insert(fake.jobs, job)
    return job
  end,
  selection = function() return fake.selection or {} end,
  current_view = function() return { id = "lighttable", name = "lighttable" } end,
  views = { lighttable = "lighttable" },
  libs = fake.libs,
}
dt.new_widget = function(kind) return function(fields) fields.kind = kind; return fields end end
dt.register_lib = function(name, label, ...) fake.libs[name] = { label = label, visible = true } end
dt.register_event = function(name, event, callback, text) fake.events[name .. "/" .. event] = callback end
dt.destroy_event = function(name, event) fake.events[name .. "/" .. event] = nil end
dt.register_storage = function(id, name, ...) fake.storages[id] = name end
dt.destroy_storage = function(id) fake.storages[id] = nil end
package.preload["darktable"] = function() return dt end
return fake
"""


@pytest.fixture
def lua():
    runtime = lua54.LuaRuntime(unpack_returned_tuples=True)
    runtime.execute(f'package.path = "{PLUGIN}/?.lua;" .. package.path')
    return runtime


@pytest.fixture
def util(lua):
    return lua.eval('(require("rddm/util"))')


def lua_list(lua, items):
    return lua.table_from(list(items))


@pytest.mark.parametrize("name", HOSTILE)
def test_quoting_survives_a_real_shell(util, name):
    shown = subprocess.run(
        ["sh", "-c", f"printf '%s' {util.quote(name)}"], capture_output=True, text=True, check=True
    ).stdout
    assert shown == name


def test_restore_command_passes_every_name_intact(lua, util, tmp_path):
    fake_rddm = tmp_path / "fake rddm $x"
    fake_rddm.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake_rddm.chmod(0o755)
    files = [f"/photos/{name}" for name in HOSTILE]
    command = util.restore_command(
        lua_list(lua, files),
        lua.table_from(
            {
                "rddm": str(fake_rddm),
                "strength": 0.357,
                "format": "tiff",
                "out_dir": "/out dir/it's",
                "state_dir": "/state $dir",
                "progress_file": "/tmp/p q.jsonl",
            }
        ),
    )
    args = json.loads(
        subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    )
    assert args == [
        "client", "restore", *files, "--strength", "0.36", "--format", "tiff", "--out", "/out dir/it's",
        "--state-dir", "/state $dir", "--progress-file", "/tmp/p q.jsonl",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "value,expected", [(0, "0.00"), (1, "1.00"), (1.7, "1.00"), (-3, "0.00"), (None, "0.50")]
)
def test_strength_is_clamped(util, value, expected):
    assert util.strength_arg(value) == expected


def test_skip_reasons(util):
    assert util.skip_reason("IMG_1.CR2") is None and util.skip_reason("x.dng") is None
    assert util.skip_reason("holiday.JPG") == "not a camera RAW (jpg)"
    assert util.skip_reason("a.tiff") == "not a camera RAW (tiff)"
    assert util.skip_reason("DSC_1_rddm.dng") == "already restored by rddm"
    assert util.skip_reason("DSC_1_rddm_12.dng") == "already restored by rddm"


def test_progress_records_keep_partial_lines_and_skip_bad_ones(lua, util):
    text = (
        '{"job": "ab12", "state": "queued", "progress": 0.0, "inputs": ["/a b.dng", "/c\\"d.dng"]}\n'
        "not json\n"
        '{"job": "ab12", "file": "/na\\u00efve \\ud83d\\ude00.dng", "output": "/x/y_rddm.dng"}\n'
        '{"job": "ab12", "state": "runn'
    )
    records, rest = util.progress_records(text)
    assert len(records) == 2 and rest == '{"job": "ab12", "state": "runn'
    assert records[1]["inputs"][2] == '/c"d.dng'
    assert records[2]["file"] == "/naïve 😀.dng" and records[2]["output"] == "/x/y_rddm.dng"
    more, rest = util.progress_records(
        rest + 'ing", "progress": 0.5, "file_progress": null, "final": true}\n'
    )
    assert rest == "" and more[1]["state"] == "running" and more[1]["progress"] == 0.5
    assert more[1]["final"] is True and more[1]["file_progress"] is None


@pytest.mark.parametrize("bad", ['{"a": }', "[1, 2", '{"a" 1}', '"open', "{} x", "tru"])
def test_json_errors_are_one_line(lua, util, bad):
    ok, problem = lua.globals().pcall(util.json_decode, bad)
    assert ok is False and problem.startswith("bad JSON at ")


STYLE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<darktable_style version="1.0"><info><name>x</name>'
    "<description></description></info><style>"
    + "".join(
        f"<plugin><num>{n}</num><module>{v}</module><operation>{op}</operation><op_params>{p}</op_params>"
        "<enabled>1</enabled><blendop_params>gz11abc</blendop_params><blendop_version>11</blendop_version>"
        "<multi_priority>0</multi_priority><multi_name></multi_name></plugin>"
        for n, v, op, p in [
            (3, 6, "exposure", "0011"),
            (0, 2, "rawprepare", "aa"),
            (1, 4, "demosaic", "bb"),
            (2, 11, "denoiseprofile", "cc"),
            (4, 1, "hotpixels", "dd"),
            (5, 6, "cacorrect", "ee"),
            (6, 2, "rawdenoise", "ff"),
            (7, 3, "temperature", "1234"),
            (8, 2, "crop", "5678"),
        ]
    )
    + "</style></darktable_style>\n"
)


def test_filter_style_drops_exactly_the_replaced_steps(util):
    filtered, kept = util.filter_style(STYLE, "x-restored")
    operations = [kept[i]["operation"] for i in range(1, len(kept) + 1)]
    assert operations == ["exposure", "temperature", "crop"]
    assert "<name>x-restored</name>" in filtered
    for gone in ("rawprepare", "demosaic", "denoiseprofile", "hotpixels", "cacorrect", "rawdenoise"):
        assert f"<operation>{gone}</operation>" not in filtered
    ElementTree.fromstring(filtered.encode())
    xmp = util.history_xmp(kept)
    root = ElementTree.fromstring(xmp.encode())
    items = root.findall(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li")
    darktable = "{http://darktable.sf.net/}"
    assert [item.get(darktable + "operation") for item in items] == ["exposure", "temperature", "crop"]
    assert items[0].get(darktable + "params") == "0011" and items[0].get(darktable + "modversion") == "6"


def test_render_command_quotes_everything(util):
    command = util.render_command(
        "/usr/bin/darktable-cli", "/a b/in's.dng", "/x/h.xmp", "/o $p/out.jpg", "/c d"
    )
    assert command.startswith(
        "'/usr/bin/darktable-cli' '/a b/in'\\''s.dng' '/x/h.xmp' '/o $p/out.jpg' --core"
    )
    assert "--configdir '/c d' --library :memory:" in command


# the plugin with the darktable double -----------------------------------------------------------


@pytest.fixture
def plugin(lua):
    fake = lua.execute(FAKE_DARKTABLE)
    module = lua.eval('(require("rddm"))')
    return fake, module


def fake_client(tmp_path: Path, body: str) -> Path:
    """A stand-in `rddm` that writes a progress file the way `rddm client restore` does."""
    script = tmp_path / "bin" / "rddm"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!{sys.executable}\nimport json, os, sys, time\n" + body)
    script.chmod(0o755)
    return script


CLIENT = """
args = sys.argv[1:]
log = open(os.environ.get("RDDM_FAKE_LOG", "/dev/null"), "a")
log.write(json.dumps(args) + "\\n"); log.flush()
if args[:2] == ["client", "cancel"]:
    open(os.environ["RDDM_FAKE_CANCEL"], "w").write(args[2]); sys.exit(0)
progress = args[args.index("--progress-file") + 1]
out = args[args.index("--out") + 1] if "--out" in args else None
files = [a for a in args[2:] if a.startswith("/")][: args.index("--strength") - 2]
def put(record):
    with open(progress, "a") as stream:
        stream.write(json.dumps(record) + "\\n")
put({"job": "job1", "state": "queued", "progress": 0.0, "inputs": files})
failed = 0
for index, name in enumerate(files):
    put({"job": "job1", "state": "running", "progress": index / len(files), "file": name,
         "file_progress": 0.5})
    if os.environ.get("RDDM_FAKE_WAIT_CANCEL"):
        for _ in range(200):
            if os.path.exists(os.environ["RDDM_FAKE_CANCEL"]):
                put({"job": "job1", "state": "cancelled", "final": True}); sys.exit(1)
            time.sleep(0.05)
    if "broken" in name:
        put({"job": "job1", "file": name, "error": name + ": not a RAW file"}); failed += 1; continue
    stem = os.path.basename(name).rsplit(".", 1)[0]
    target = os.path.join(out or os.path.dirname(name), stem + "_rddm.dng")
    open(target, "wb").write(b"II*\\0")
    put({"job": "job1", "file": name, "output": target})
put({"job": "job1", "state": "done", "progress": 1.0, "final": True})
sys.exit(1 if failed else 0)
"""


def images(lua, fake, paths):
    return lua.table_from([fake.new_image(str(path)) for path in paths])


def test_restore_images_imports_groups_and_tags(lua, plugin, tmp_path, monkeypatch):
    fake, module = plugin
    script = fake_client(tmp_path, CLIENT)
    fake.prefs["rddm/executable"] = str(script)
    folder = tmp_path / "shoot 'ü' $x"
    folder.mkdir()
    for name in ("a b.NEF", "broken.CR2", "c.jpg"):
        (folder / name).write_bytes(b"raw")
    monkeypatch.setenv("RDDM_FAKE_LOG", str(tmp_path / "log"))
    originals = images(
        lua, fake, [folder / "a b.NEF", folder / "broken.CR2", folder / "c.jpg", folder / "gone.NEF"]
    )
    originals[1].rating, originals[1].red = 3, True
    originals[1].tags = lua.table_from(
        [fake.dt.tags.create("trip|alps"), fake.dt.tags.create("darktable|format|nef")]
    )
    restored, errors = module.restore_images(originals, lua.table_from({"strength": 0.25}))
    assert len(restored) == 1
    image = restored[1]
    assert image.filename == "a b_rddm.dng" and lua.globals().rawequal(image.group, originals[1])
    assert image.rating == 3 and image.red is True
    assert [image.tags[i].name for i in range(1, len(image.tags) + 1)] == [
        "trip|alps", "rddm|restored", "rddm|strength|25",
    ]  # fmt: skip
    assert list(errors.values()) == [
        "c.jpg: not a camera RAW (jpg)",
        "gone.NEF: the file is missing",
        f"{folder / 'broken.CR2'}: not a RAW file",
    ]
    call = json.loads((tmp_path / "log").read_text().splitlines()[0])
    assert call[:4] == ["client", "restore", str(folder / "a b.NEF"), str(folder / "broken.CR2")]
    assert call[call.index("--strength") + 1] == "0.25" and call[call.index("--format") + 1] == "dng"
    jobs = [fake.jobs[i] for i in range(1, len(fake.jobs) + 1)]
    assert jobs[0].text == "rddm: restoring 2 images" and jobs[0].percent == 1.0
    assert all(job.valid is False for job in jobs) and len(jobs) == 3  # overall + one per file
    assert fake.messages[len(fake.messages)].startswith("rddm: restored 1 of 2 images")


def test_subfolder_place_and_group_leader_preference(lua, plugin, tmp_path):
    fake, module = plugin
    fake.prefs["rddm/executable"] = str(fake_client(tmp_path, CLIENT))
    fake.prefs["rddm/leader"] = "restored"
    (tmp_path / "x.ORF").write_bytes(b"raw")
    restored, errors = module.restore_images(
        images(lua, fake, [tmp_path / "x.ORF"]), lua.table_from({"place": "subfolder", "format": "jpeg"})
    )
    assert len(errors) == 0 and restored[1].path == str(tmp_path / "rddm")
    assert restored[1].leader is True


def test_cancel_from_the_job_bar_reaches_the_engine(lua, plugin, tmp_path, monkeypatch):
    fake, module = plugin
    fake.prefs["rddm/executable"] = str(fake_client(tmp_path, CLIENT))
    monkeypatch.setenv("RDDM_FAKE_WAIT_CANCEL", "1")
    monkeypatch.setenv("RDDM_FAKE_CANCEL", str(tmp_path / "cancelled"))
    (tmp_path / "x.NEF").write_bytes(b"raw")

    def press_cancel(count):
        if count == 5:
            job = fake.jobs[1]
            job.cancel(job)

    fake.on_sleep = press_cancel
    restored, errors = module.restore_images(images(lua, fake, [tmp_path / "x.NEF"]), lua.table_from({}))
    assert len(restored) == 0 and list(errors.values()) == ["cancelled"]
    assert (tmp_path / "cancelled").read_text() == "job1"


def test_missing_rddm_and_a_failing_client(lua, plugin, tmp_path, monkeypatch):
    fake, module = plugin
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the shell's tools, no rddm
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "x.NEF").write_bytes(b"raw")
    restored, errors = module.restore_images(images(lua, fake, [tmp_path / "x.NEF"]), lua.table_from({}))
    assert list(errors.values()) == [
        "rddm is not installed: install it, or set its path in preferences > lua options"
    ]
    fake.prefs["rddm/executable"] = str(
        fake_client(
            tmp_path,
            "print('error: no engine answers at http://x (refused)', file=sys.stderr)\nsys.exit(2)\n",
        )
    )
    restored, errors = module.restore_images(images(lua, fake, [tmp_path / "x.NEF"]), lua.table_from({}))
    assert list(errors.values()) == ["no engine answers at http://x (refused)"]


def test_module_shortcut_storage_and_destroy(lua, plugin):
    fake, module = plugin
    assert fake.libs["rddm"].label == "RDDM restore"
    assert fake.storages["rddm_export"] == "RDDM restored"
    assert fake.events["rddm_shortcut/shortcut"] is not None
    module.destroy()
    assert fake.libs["rddm"].visible is False and fake.storages["rddm_export"] is None
    assert fake.events["rddm_shortcut/shortcut"] is None
    module.restart()
    assert fake.libs["rddm"].visible is True


def test_an_other_api_version_is_refused(lua):
    fake = lua.execute(FAKE_DARKTABLE)
    fake.dt.configuration.api_version_major = 10
    fake.dt.configuration.api_version_string = "10.0.0"
    module = lua.eval('(require("rddm"))')
    assert module.restore_images is None and module.metadata.name == "rddm"
    assert fake.messages[1] == "ERROR rddm: needs darktable's Lua API 9.x, this darktable has 10.0.0"


def test_preview_then_apply_restores_at_the_chosen_strength(lua, plugin, tmp_path, monkeypatch):
    fake, module = plugin
    fake.prefs["rddm/executable"] = str(fake_client(tmp_path, CLIENT))
    monkeypatch.setenv("RDDM_FAKE_LOG", str(tmp_path / "log"))
    panel = tmp_path / "bin" / "rddm-preview"
    panel.write_text(
        '#!/bin/sh\necho "$@" > "$0.args"\necho \'Qt chatter\'\n'
        'echo \'{"strength": 0.8, "format": "jpeg"}\'\n'
    )
    panel.chmod(0o755)
    (tmp_path / "x y.NEF").write_bytes(b"raw")
    fake.prefs["rddm/strength"] = 30
    fake.prefs["rddm/strength_set"] = True
    module.preview_images(images(lua, fake, [tmp_path / "x y.NEF"]))
    assert (
        tmp_path / "bin" / "rddm-preview.args"
    ).read_text().strip() == f"{tmp_path / 'x y.NEF'} --apply --strength 30"
    call = json.loads((tmp_path / "log").read_text().splitlines()[0])
    assert call[call.index("--strength") + 1] == "0.80" and call[call.index("--format") + 1] == "jpeg"
    assert fake.imported[1].filename == "x y_rddm.dng"


def test_preview_without_the_panel_says_so(lua, plugin, tmp_path, monkeypatch):
    fake, module = plugin
    fake.prefs["rddm/executable"] = str(fake_client(tmp_path, CLIENT))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the shell's tools, no rddm
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "x.NEF").write_bytes(b"raw")
    module.preview_images(images(lua, fake, [tmp_path / "x.NEF"]))
    assert fake.messages[len(fake.messages)] == "rddm: the preview panel (rddm-preview) is not installed"
