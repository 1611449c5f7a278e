"""atomic_write and next_free_path: complete files or nothing, never a silent overwrite."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rddm.errors import OutputError
from rddm.io import atomic_write, next_free_path


def _write_text(text: str):
    return lambda temp: Path(temp).write_text(text)


def test_writes_through_a_hidden_temp_with_the_real_suffix(tmp_path):
    seen = []

    def write(temp: Path) -> None:
        seen.append(temp)
        temp.write_text("restored")

    result = atomic_write(tmp_path / "photo_rddm.png", write)
    assert result == tmp_path / "photo_rddm.png"
    assert result.read_text() == "restored"
    assert seen[0].parent == tmp_path
    assert seen[0].name.startswith(".photo_rddm.") and seen[0].name.endswith(".tmp.png")
    assert os.listdir(tmp_path) == ["photo_rddm.png"]


@pytest.mark.parametrize("partial", [False, True])
def test_a_failing_writer_leaves_nothing(tmp_path, partial):
    def write(temp: Path) -> None:
        if partial:
            temp.write_bytes(b"half a file")
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        atomic_write(tmp_path / "out.dng", write)
    assert os.listdir(tmp_path) == []


def test_file_system_errors_become_one_line(tmp_path):
    def write(temp: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError, match=r"out\.tif: cannot write \(No space left on device\)"):
        atomic_write(tmp_path / "out.tif", write)
    assert os.listdir(tmp_path) == []


def test_an_existing_file_is_refused_and_kept(tmp_path):
    target = tmp_path / "out.jpg"
    target.write_text("the photographer's file")
    calls = []
    with pytest.raises(OutputError) as error:
        atomic_write(target, calls.append)
    assert str(error.value) == f"{target}: exists already (use --overwrite)"
    assert calls == []  # refused before any work
    assert target.read_text() == "the photographer's file"
    assert os.listdir(tmp_path) == ["out.jpg"]


def _without_hard_links(monkeypatch) -> None:
    """Behave like FAT or a network share, where os.link fails: the checked os.replace fallback."""

    def no_link(source, target):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", no_link)


@pytest.mark.parametrize("links_work", [True, False])
def test_a_file_appearing_during_the_write_is_not_clobbered(tmp_path, monkeypatch, links_work):
    if not links_work:
        _without_hard_links(monkeypatch)
    target = tmp_path / "out.png"

    def write(temp: Path) -> None:
        temp.write_text("ours")
        target.write_text("another process")

    with pytest.raises(OutputError, match="exists already"):
        atomic_write(target, write)
    assert target.read_text() == "another process"
    assert os.listdir(tmp_path) == ["out.png"]


def test_without_hard_links_a_new_file_still_arrives(tmp_path, monkeypatch):
    _without_hard_links(monkeypatch)
    atomic_write(tmp_path / "out.png", _write_text("ours"))
    assert os.listdir(tmp_path) == ["out.png"]


def test_overwrite_replaces(tmp_path):
    target = tmp_path / "out.tif"
    target.write_text("old")
    atomic_write(target, _write_text("new"), overwrite=True)
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.tif"]


def test_missing_folder(tmp_path):
    with pytest.raises(OutputError, match="output folder does not exist"):
        atomic_write(tmp_path / "nowhere" / "out.dng", _write_text("x"))


def test_folder_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="output folder does not exist"):
        atomic_write(tmp_path / "file" / "out.dng", _write_text("x"))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    with pytest.raises(OutputError, match="output folder is not writable"):
        atomic_write(folder / "out.dng", _write_text("x"))


def test_next_free_path_counts_up(tmp_path):
    assert next_free_path(tmp_path, "IMG_0001", ".dng") == tmp_path / "IMG_0001_rddm.dng"
    (tmp_path / "IMG_0001_rddm.dng").touch()
    assert next_free_path(tmp_path, "IMG_0001", ".dng") == tmp_path / "IMG_0001_rddm_1.dng"
    (tmp_path / "IMG_0001_rddm_1.dng").touch()
    (tmp_path / "IMG_0001_rddm_2.dng").touch()
    assert next_free_path(tmp_path, "IMG_0001", ".dng") == tmp_path / "IMG_0001_rddm_3.dng"
    assert next_free_path(tmp_path, "IMG_0001", ".jpg") == tmp_path / "IMG_0001_rddm.jpg"
