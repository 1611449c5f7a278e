"""The engine's HTTP API (FastAPI); OpenAPI at ``/openapi.json``.

Every route but ``/v1/health`` needs ``Authorization: Bearer <token>``. Errors are JSON
``{"error": "<one readable line>", "code": "<kind>"}``. Progress is polled: ``GET /v1/jobs/{id}``
(``?wait=S`` holds the answer until the job finishes or S seconds pass).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Literal

import cv2
import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from rddm import __version__
from rddm.color import to_uint
from rddm.errors import RddmError
from rddm.io.images import SUPPORTED_FORMATS
from rddm.server.service import MAX_OVERVIEW_SIDE, Engine, Job

log = logging.getLogger("rddm.server")

MAX_BODY_BYTES = 256 * 1024
DRAIN_LIMIT = 16 * MAX_BODY_BYTES
MAX_INPUTS = 1000
MAX_WAIT_SECONDS = 30.0


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class JobRequest(StrictModel):
    inputs: list[str] = Field(
        min_length=1, max_length=MAX_INPUTS, description="Absolute paths of the RAW files to restore."
    )
    strength: float = Field(0.5, ge=0.0, le=1.0, description="0 = faithful decode, 1 = full restoration.")
    format: Literal[SUPPORTED_FORMATS] = Field("dng", description="Output format.")  # type: ignore[valid-type]
    output_dir: str | None = Field(
        None, description="Absolute path of an existing, writable folder; default: next to each RAW."
    )
    overwrite: bool = Field(False, description="Replace <stem>_rddm.<ext> instead of numbering a new name.")


class PreviewRequest(StrictModel):
    input: str = Field(description="Absolute path of the RAW file.")
    roi: list[int] | None = Field(
        None,
        min_length=4,
        max_length=4,
        description="[x, y, width, height] of the upright picture, in pixels; default: the whole picture.",
    )
    strength: float = Field(0.5, ge=0.0, le=1.0)
    baseline: bool = Field(False, description="The classical render (OpenCV edge-aware demosaic) instead.")
    max_size: int | None = Field(
        None, ge=16, le=MAX_OVERVIEW_SIDE, description="Scale down so the longer side is at most this."
    )


class InfoRequest(StrictModel):
    input: str = Field(description="Absolute path of the RAW file.")


class JobCurrent(BaseModel):
    input: str
    progress: float


class JobOutput(BaseModel):
    input: str
    output: str


class JobError(BaseModel):
    input: str
    error: str


class JobState(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float
    inputs: list[str]
    outputs: list[JobOutput]
    errors: list[JobError]
    current: JobCurrent | None
    strength: float
    format: str
    output_dir: str | None
    created: float
    started: float | None
    finished: float | None


class JobList(BaseModel):
    jobs: list[JobState]


class Health(BaseModel):
    status: str
    version: str
    model: str
    trained: bool
    device: str
    dtype: str
    queue: int
    running_jobs: int
    model_runs: int
    pid: int
    uptime: float


class ErrorBody(BaseModel):
    error: str
    code: str


ERRORS = {
    400: {"model": ErrorBody, "description": "Bad input: a missing or unusable file, region or folder."},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
    413: {"model": ErrorBody, "description": "Request body too large."},
    422: {"model": ErrorBody, "description": "The request does not match the schema."},
}


def _code(error: Exception) -> str:
    """``NotRawError`` -> ``not_raw``."""
    name = type(error).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class BodyLimit:
    """ASGI middleware: refuse request bodies above ``limit`` bytes with a JSON 413."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > DRAIN_LIMIT):
            return await self._refuse(send)  # not worth reading: the connection closes
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            size += len(message.get("body", b""))
            if size <= self.limit:
                chunks.append(message.get("body", b""))
            elif size > DRAIN_LIMIT:
                return await self._refuse(send)
            more = message.get("more_body", False)
        if size > self.limit:
            # Read to the end, so the client gets the answer instead of a reset while sending.
            return await self._refuse(send)
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _refuse(self, send):
        response = JSONResponse(
            {"error": f"request body larger than {self.limit} bytes", "code": "too_large"}, status_code=413
        )
        await response({"type": "http"}, None, send)


def create_app(engine: Engine, token: str, *, on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The API around ``engine``; ``on_shutdown`` is called by ``POST /v1/shutdown``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.stop()

    app = FastAPI(
        title="rddm engine",
        version=__version__,
        description=__doc__,
        lifespan=lifespan,
        responses=ERRORS,
    )
    bearer = HTTPBearer(auto_error=False, description="The token from the engine's state file.")

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(401, "missing or wrong bearer token", "unauthorized")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse({"error": error.message, "code": error.code}, error.status, headers=headers)

    @app.exception_handler(RddmError)
    async def rddm_error(request: Request, error: RddmError):
        return JSONResponse({"error": str(error), "code": _code(error)}, 400)

    @app.exception_handler(ValueError)
    async def value_error(request: Request, error: ValueError):
        return JSONResponse({"error": str(error), "code": "invalid_value"}, 400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return JSONResponse(
            {"error": "; ".join(problems) or "invalid request", "code": "invalid_request"}, 422
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail), "code": "http"}, error.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception):
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {error!r}", "code": "internal"}, 500)

    def found(job_id: str) -> Job:
        job = engine.job(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id}", "not_found")
        return job

    not_found = {404: {"model": ErrorBody, "description": "No such job."}}

    @app.get("/v1/health", response_model=Health, tags=["engine"])
    def health() -> dict:
        """Version, model, device and queue; needs no token."""
        return engine.health()

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobState,
        dependencies=[Depends(authorized)],
        tags=["jobs"],
    )
    def submit(request: JobRequest) -> dict:
        """Queue a restore job; outputs are ``<stem>_rddm.<ext>`` (numbered unless ``overwrite``)."""
        job = engine.submit(
            request.inputs,
            strength=request.strength,
            fmt=request.format,
            output_dir=request.output_dir,
            overwrite=request.overwrite,
        )
        return job.describe()

    @app.get("/v1/jobs", response_model=JobList, dependencies=[Depends(authorized)], tags=["jobs"])
    def jobs() -> dict:
        """The recent jobs, oldest first."""
        return {"jobs": [job.describe() for job in engine.jobs()]}

    @app.get(
        "/v1/jobs/{job_id}",
        response_model=JobState,
        responses=not_found,
        dependencies=[Depends(authorized)],
        tags=["jobs"],
    )
    def job(job_id: str, wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_SECONDS, allow_inf_nan=False)) -> dict:
        """A job's state and progress in [0, 1]; with ``wait``, answers when it finishes or after
        ``wait`` seconds."""
        found(job_id)
        if wait > 0:
            engine.wait(job_id, wait)
        return found(job_id).describe()

    @app.delete(
        "/v1/jobs/{job_id}",
        status_code=202,
        response_model=JobState,
        responses=not_found,
        dependencies=[Depends(authorized)],
        tags=["jobs"],
    )
    def cancel(job_id: str) -> dict:
        """Cancel a job: a queued one at once, a running one after its current tile."""
        found(job_id)
        return engine.cancel(job_id).describe()

    @app.post(
        "/v1/preview",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "An 8-bit sRGB PNG, upright."}},
        dependencies=[Depends(authorized)],
        tags=["preview"],
    )
    def preview(request: PreviewRequest) -> Response:
        """The neutral sRGB rendering of a region at a strength, or its classical render
        (``baseline``). A region's two strength ends are cached: another strength is only a blend
        (header ``X-Rddm-Cache: hit``)."""
        result = engine.preview(
            request.input,
            roi=None if request.roi is None else tuple(request.roi),
            strength=request.strength,
            baseline=request.baseline,
            max_size=request.max_size,
        )
        return Response(
            encode_png(result.srgb),
            media_type="image/png",
            headers={
                "X-Rddm-Cache": "hit" if result.cached else "miss",
                "X-Rddm-Seconds": f"{result.seconds:.4f}",
            },
        )

    @app.post("/v1/info", dependencies=[Depends(authorized)], tags=["preview"])
    def info(request: InfoRequest) -> dict:
        """What the engine reads from a RAW: camera, CFA pattern, sizes (stored and upright), EXIF."""
        return json.loads(json.dumps(engine.info(request.input), default=str))

    @app.post(
        "/v1/shutdown",
        status_code=202,
        dependencies=[Depends(authorized)],
        tags=["engine"],
    )
    def shutdown() -> dict:
        """Stop the engine: running jobs stop after their tile and are marked cancelled."""
        if on_shutdown is not None:
            on_shutdown()
        return {"status": "stopping"}

    app.add_middleware(BodyLimit)
    return app


def encode_png(srgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` encoded sRGB in [0, 1] -> PNG bytes (8 bits, stored without compression)."""
    pixels = np.ascontiguousarray(to_uint(srgb, 8)[..., ::-1])
    # A preview is encoded on every strength change and goes to the panel on this same machine:
    # stored (level 0, no filter) takes a third of the time of level 1 with RLE and the SUB filter
    # for 1% more bytes on a noisy crop (`python scripts/preview_timing.py`).
    params = [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    ok, encoded = cv2.imencode(".png", pixels, params)
    if not ok:
        raise RddmError("could not encode the preview as PNG")
    return encoded.tobytes()
