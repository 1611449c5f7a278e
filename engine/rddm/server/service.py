"""The engine's work, without HTTP: one model on one device, a job queue and the preview cache.

One worker thread runs restore jobs one after another; previews run in the caller's thread. Both
take :attr:`Engine.device_lock` for each tile, so two requests never run the model at once on
one device, and a preview waits for at most the tile a job is on.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from rddm import __version__
from rddm.color import render_srgb, white_balance
from rddm.errors import InputError, OutputError, RddmError
from rddm.io.images import FORMAT_SUFFIXES, region_to_stored, upright
from rddm.model.pipeline import Cancelled, Ends, RDDMPipeline, check_strength
from rddm.raw import RawImage, read_raw
from rddm.restore import DEFAULT_TILE, packed_tiling, restore_file

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
# Previews are for judging a crop, not for restoring a picture: larger regions go through a job.
MAX_PREVIEW_PIXELS = 2048 * 2048
MAX_OVERVIEW_SIDE = 4096
KEPT_JOBS = 200


def check_input(path: str) -> Path:
    """An absolute path to an existing regular file the engine's user can read, or InputError."""
    if "\0" in path:
        raise InputError(f"{path!r}: not a usable path (it holds a NUL character)")
    if not path or not os.path.isabs(path):
        raise InputError(f"{path!r}: give an absolute path (the engine does not know your working folder)")
    try:
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        if not os.path.isfile(path):
            raise InputError(f"{path}: not a regular file")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: not readable")
    except (OSError, ValueError) as error:  # embedded NUL, name too long, ...
        raise InputError(f"{path!r}: not a usable path ({error})") from None
    return Path(path)


def check_output_dir(path: str) -> Path:
    """An absolute path to an existing folder the engine's user can write to, or OutputError."""
    if "\0" in path or not path or not os.path.isabs(path):
        raise OutputError(f"{path!r}: give an absolute path of an output folder")
    try:
        if not os.path.isdir(path):
            raise OutputError(f"{path}: output folder does not exist")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: output folder is not writable")
    except (OSError, ValueError) as error:
        raise OutputError(f"{path!r}: not a usable folder ({error})") from None
    return Path(path)


@dataclasses.dataclass
class Job:
    """A restore job: inputs restored one after another into ``output_dir`` (or next to each RAW)."""

    inputs: list[Path]
    strength: float
    fmt: str
    output_dir: Path | None
    overwrite: bool
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "queued"
    outputs: list[dict] = dataclasses.field(default_factory=list)
    errors: list[dict] = dataclasses.field(default_factory=list)
    current: str | None = None
    file_progress: float = 0.0
    created: float = dataclasses.field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        finished = len(self.outputs) + len(self.errors)
        running = self.file_progress if self.current is not None else 0.0
        return round(min(1.0, (finished + running) / len(self.inputs)), 4)

    def describe(self) -> dict:
        """What ``GET /v1/jobs/{id}`` answers."""
        return {
            "id": self.id,
            "state": self.state,
            "progress": self.progress,
            "inputs": [str(path) for path in self.inputs],
            "outputs": list(self.outputs),
            "errors": list(self.errors),
            "current": None
            if self.current is None
            else {"input": self.current, "progress": round(self.file_progress, 4)},
            "strength": self.strength,
            "format": self.fmt,
            "output_dir": None if self.output_dir is None else str(self.output_dir),
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


class LruCache:
    """A thread-safe least-recently-used cache bounded by the bytes of its values."""

    def __init__(self, max_bytes: int, size_of):
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        size = self._size_of(value)
        with self._lock:
            if key in self._items:
                self._bytes -= self._size_of(self._items.pop(key))
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= self._size_of(dropped)

    def __len__(self) -> int:
        return len(self._items)


def _ends_bytes(ends: Ends) -> int:
    return ends.fidelity.nbytes + ends.restored.nbytes


def _raw_bytes(raw: RawImage) -> int:
    return raw.cfa.nbytes


def file_key(path: Path) -> tuple:
    """Identifies one version of a file: a changed file is a new key."""
    stat = path.stat()
    return (str(path), stat.st_mtime_ns, stat.st_size)


@dataclasses.dataclass
class Preview:
    """An encoded-sRGB preview, upright, ``(H, W, 3)`` in [0, 1], and how it was made."""

    srgb: np.ndarray
    cached: bool
    seconds: float


class DeviceLock:
    """The lock each model run (one tile) holds; counts the runs for the stats and the tests."""

    def __init__(self):
        self._lock = threading.Lock()
        self.runs = 0

    def __enter__(self) -> DeviceLock:
        self._lock.acquire()
        self.runs += 1
        return self

    def __exit__(self, *exc_info) -> None:
        self._lock.release()


class Engine:
    """The model on its device, the job queue and worker, and the preview caches."""

    def __init__(
        self,
        pipeline: RDDMPipeline,
        *,
        model_name: str,
        tile: int = DEFAULT_TILE,
        preview_cache_bytes: int = 1 << 30,
    ):
        self.pipeline = pipeline
        self.model_name = model_name
        self.tile = tile
        self.device_lock = DeviceLock()
        self.started = time.time()
        self._jobs: dict[str, Job] = {}
        self._order: collections.deque[str] = collections.deque()
        self._queue: collections.deque[Job] = collections.deque()
        self._jobs_lock = threading.Condition()
        self._stopping = False
        self._ends = LruCache(preview_cache_bytes, _ends_bytes)
        self._raws = LruCache(2 * 24_000_000 * 4, _raw_bytes)  # about two 24 MP mosaics
        self._worker = threading.Thread(target=self._work, name="rddm-worker", daemon=True)
        self._worker.start()

    # -- facts
    def health(self) -> dict:
        with self._jobs_lock:
            queued = len(self._queue)
            running = sum(1 for job in self._jobs.values() if job.state == "running")
        return {
            "status": "ok",
            "version": __version__,
            "model": self.model_name,
            "trained": bool(self.pipeline.info.get("trained", False)),
            "device": str(self.pipeline.device),
            "dtype": str(self.pipeline.dtype).replace("torch.", ""),
            "queue": queued,
            "running_jobs": running,
            "model_runs": self.device_lock.runs,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 1),
        }

    # -- jobs
    def submit(
        self,
        inputs: list[str],
        *,
        strength: float = 0.5,
        fmt: str = "dng",
        output_dir: str | None = None,
        overwrite: bool = False,
    ) -> Job:
        """Check the request and queue it; raises InputError / OutputError / ValueError."""
        strength = check_strength(strength)
        if fmt not in FORMAT_SUFFIXES:
            raise ValueError(f"format must be one of {', '.join(FORMAT_SUFFIXES)}, got {fmt!r}")
        if not inputs:
            raise InputError("no inputs given")
        paths = [check_input(path) for path in inputs]
        folder = check_output_dir(output_dir) if output_dir is not None else None
        if folder is None:
            for path in paths:
                if not os.access(path.parent, os.W_OK | os.X_OK):
                    raise OutputError(f"{path.parent}: folder is not writable (give an output_dir)")
        job = Job(inputs=paths, strength=strength, fmt=fmt, output_dir=folder, overwrite=overwrite)
        with self._jobs_lock:
            if self._stopping:
                raise RddmError("the engine is stopping")
            self._jobs[job.id] = job
            self._order.append(job.id)
            self._queue.append(job)
            self._forget_old_jobs()
            self._jobs_lock.notify_all()
        return job

    def _forget_old_jobs(self) -> None:
        while len(self._order) > KEPT_JOBS:
            oldest = self._jobs.get(self._order[0])
            if oldest is not None and oldest.state in ("queued", "running"):
                break
            self._jobs.pop(self._order.popleft(), None)

    def job(self, job_id: str) -> Job | None:
        with self._jobs_lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._jobs_lock:
            return [self._jobs[job_id] for job_id in self._order if job_id in self._jobs]

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job: a queued one at once, a running one at its next tile."""
        with self._jobs_lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            job.cancel.set()
            if job.state == "queued":
                self._queue.remove(job)
                job.state, job.finished = "cancelled", time.time()
            self._jobs_lock.notify_all()
            return job

    def wait(self, job_id: str, timeout: float) -> Job | None:
        """Wait until the job has finished or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._jobs_lock:
            while True:
                job = self._jobs.get(job_id)
                left = deadline - time.monotonic()
                if job is None or job.state not in ("queued", "running") or left <= 0:
                    return job
                self._jobs_lock.wait(left)

    def _work(self) -> None:
        while True:
            with self._jobs_lock:
                while not self._queue and not self._stopping:
                    self._jobs_lock.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state, job.started = "running", time.time()
            self._run_job(job)
            with self._jobs_lock:
                job.finished = time.time()
                job.current = None
                if job.cancel.is_set():
                    job.state = "cancelled"
                else:
                    job.state = "done" if job.outputs or not job.errors else "failed"
                self._jobs_lock.notify_all()

    def _run_job(self, job: Job) -> None:
        for source in job.inputs:
            if job.cancel.is_set():
                return
            job.current, job.file_progress = str(source), 0.0

            def progress(done: int, total: int) -> None:
                job.file_progress = done / total

            try:
                written = restore_file(
                    self.pipeline,
                    source,
                    strength=job.strength,
                    fmt=job.fmt,
                    out_dir=job.output_dir,
                    overwrite=job.overwrite,
                    tile=self.tile,
                    progress=progress,
                    cancel=job.cancel,
                    device_lock=self.device_lock,
                )
            except Cancelled:
                return
            except (RddmError, ValueError) as error:
                job.errors.append({"input": str(source), "error": str(error)})
            except Exception as error:  # a job's failure never takes the engine down
                job.errors.append({"input": str(source), "error": f"internal error: {error!r}"})
            else:
                job.outputs.append({"input": str(source), "output": str(written)})
            job.current = None

    def stop(self, timeout: float = 60.0) -> None:
        """Cancel everything; the running job stops after its tile. Waits for the worker."""
        with self._jobs_lock:
            self._stopping = True
            for job in self._jobs.values():
                if job.state in ("queued", "running"):
                    job.cancel.set()
                if job.state == "queued":
                    job.state, job.finished = "cancelled", time.time()
            self._queue.clear()
            self._jobs_lock.notify_all()
        self._worker.join(timeout)

    # -- previews
    def read(self, path: Path) -> RawImage:
        """The RAW, read once per file version and kept for the next preview of it."""
        key = file_key(path)
        raw = self._raws.get(key)
        if raw is None:
            raw = read_raw(path)
            self._raws.put(key, raw)
        return raw

    def info(self, path: str) -> dict:
        raw = self.read(check_input(path))
        summary = raw.summary()
        turned = raw.orientation in (5, 6, 7, 8)
        summary["upright_width"] = raw.height if turned else raw.width
        summary["upright_height"] = raw.width if turned else raw.height
        return summary

    def preview(
        self,
        path: str,
        *,
        roi: tuple[int, int, int, int] | None = None,
        strength: float = 0.5,
        baseline: bool = False,
        max_size: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Preview:
        """The neutral rendering of ``roi`` (upright coordinates ``x, y, width, height``; the whole
        picture when None), restored at ``strength``, or the classical render when ``baseline``.

        Both strength ends of a region are cached, so another strength on it is only a blend.
        """
        started = time.perf_counter()
        strength = check_strength(strength)
        source = check_input(path)
        raw = self.read(source)
        region = region_to_stored(roi, raw.orientation, raw.width, raw.height)
        if region[2] * region[3] > MAX_PREVIEW_PIXELS and (max_size is None or not baseline):
            raise ValueError(
                f"region of {region[2]}x{region[3]} is too large for a preview (at most "
                f"{MAX_PREVIEW_PIXELS} pixels, or a baseline with max_size; restore it with a job)"
            )
        if baseline:
            balanced, cached = classical_region(raw, region), False
        else:
            ends, cached = self._ends_for(source, raw, region, cancel)
            balanced = ends.blend(strength)
        if max_size is not None:  # in linear light, where averaging is right
            balanced = fit_within(balanced, max_size)
        srgb = upright(render_srgb(balanced, raw.xyz_to_cam), raw.orientation)
        return Preview(srgb=srgb, cached=cached, seconds=time.perf_counter() - started)

    def _ends_for(self, source: Path, raw: RawImage, region, cancel) -> tuple[Ends, bool]:
        tile_size, overlap = packed_tiling(self.pipeline, self.tile)
        key = (*file_key(source), region, self.model_name, tile_size, overlap)
        ends = self._ends.get(key)
        if ends is not None:
            return ends, True
        ends = self.pipeline.restore_ends(
            raw,
            roi=region,
            tile_size=tile_size,
            tile_overlap=overlap,
            cancel=cancel,
            device_lock=self.device_lock,
        )
        self._ends.put(key, ends)
        return ends, False


def classical_region(raw: RawImage, region: tuple[int, int, int, int]) -> np.ndarray:
    """White-balanced linear camera RGB of ``region`` by OpenCV's edge-aware demosaic: the "before".

    The region is demosaicked with a small margin so its border has the same neighbours as in a
    whole-picture demosaic.
    """
    x, y, width, height = region
    margin = 4
    top, left = max(0, y - margin) // 2 * 2, max(0, x - margin) // 2 * 2
    bottom = min(raw.height, y + height + margin)
    right = min(raw.width, x + width + margin)
    mosaic = raw.cfa[top:bottom, left:right]
    # OpenCV names a Bayer pattern by the second row's first two colours, and wants 16 bits.
    codes = {
        "RGGB": cv2.COLOR_BayerBG2RGB_EA,
        "BGGR": cv2.COLOR_BayerRG2RGB_EA,
        "GRBG": cv2.COLOR_BayerGB2RGB_EA,
        "GBRG": cv2.COLOR_BayerGR2RGB_EA,
    }
    if mosaic.shape[0] < 2 or mosaic.shape[1] < 2:
        rgb = np.repeat(mosaic[..., None], 3, axis=-1)
    else:
        quantised = np.round(np.clip(mosaic, 0.0, 1.0) * 65535).astype(np.uint16)
        rgb = cv2.cvtColor(quantised, codes[raw.cfa_pattern]).astype(np.float32) / 65535.0
    rgb = rgb[y - top : y - top + height, x - left : x - left + width]
    return white_balance(rgb, raw.wb_gains)


def fit_within(image: np.ndarray, max_size: int) -> np.ndarray:
    """Scale ``(H, W, 3)`` down (area averaging) so that its longer side is at most ``max_size``."""
    height, width = image.shape[:2]
    scale = max_size / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
