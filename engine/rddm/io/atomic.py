"""Writing outputs safely: a temporary name in the target folder, then one atomic move into place.

A reader (darktable's importer, a file manager) therefore sees either no file or a complete one,
a crash leaves at most a hidden ``.*.tmp*`` file, and an existing file is never replaced silently.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from rddm.errors import OutputError


def next_free_path(directory: str | os.PathLike, stem: str, suffix: str) -> Path:
    """The first free name in ``directory``: ``<stem>_rddm<suffix>``, ``<stem>_rddm_1<suffix>``, ...

    ``suffix`` includes its dot (``".dng"``). Another process may take the name before it is
    written: :func:`atomic_write` without ``overwrite`` still refuses to replace it then.
    """
    directory = Path(directory)
    candidate = directory / f"{stem}_rddm{suffix}"
    number = 0
    while os.path.lexists(candidate):
        number += 1
        candidate = directory / f"{stem}_rddm_{number}{suffix}"
    return candidate


def _check_directory(path: Path) -> None:
    directory = path.parent
    if not directory.is_dir():
        raise OutputError(f"{directory}: output folder does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{directory}: output folder is not writable")


def _exists_error(path: Path) -> OutputError:
    return OutputError(f"{path}: exists already (use --overwrite)")


def _reserve_temp(path: Path) -> Path:
    """Create an empty hidden file beside ``path`` that keeps the real suffix last.

    Libraries that choose a format from the name (OpenCV, Pillow) see ``.png`` or ``.jpg``.
    """
    while True:
        temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            # "x" reserves the name and keeps the umask's permissions (mkstemp would give 0600).
            with open(temp, "x"):
                return temp
        except FileExistsError:
            continue
        except OSError as error:
            raise OutputError(f"{path}: cannot write ({error.strerror})") from None


def _fsync(path: Path) -> None:
    # Data on disk before the rename: a crash then leaves the old state or the whole new file.
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _move_no_clobber(temp: Path, path: Path) -> None:
    """Move ``temp`` to ``path`` unless ``path`` exists, atomically where hard links work."""
    try:
        os.link(temp, path)  # fails with EEXIST instead of replacing: no race with another writer
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:
        # No hard links here (FAT, some network shares): check, then replace. Only a file
        # appearing between the two steps can still be lost, which is as good as it gets there.
        if os.path.lexists(path):
            raise _exists_error(path) from None
        os.replace(temp, path)
        return
    temp.unlink()


def atomic_write(
    path: str | os.PathLike, write_fn: Callable[[Path], None], *, overwrite: bool = False
) -> Path:
    """Write a file through ``write_fn(temp_path)`` and move it to ``path`` in one step.

    Args:
        path: the final file name; its folder must exist.
        write_fn: writes the complete file at the temporary path it is given (same folder and
            suffix as ``path``).
        overwrite: replace an existing ``path``; without it an existing file is left untouched.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is False, the folder is missing or not
            writable, or the file system fails (disk full, ...). Nothing is left behind.
        Exception: whatever ``write_fn`` raises, after the temporary file is removed.
    """
    path = Path(path)
    _check_directory(path)
    if not overwrite and os.path.lexists(path):
        raise _exists_error(path)  # early, before spending time on the write
    temp = _reserve_temp(path)
    try:
        write_fn(temp)
        _fsync(temp)
        if overwrite:
            os.replace(temp, path)
        else:
            _move_no_clobber(temp, path)
    except OSError as error:
        raise OutputError(f"{path}: cannot write ({error.strerror or error})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return path
