"""The local web app: one page and a JSON API over a loaded `Predictor`.

``create_app(predictor)`` builds the FastAPI app; ``serve(app, host, port)``
runs it with uvicorn. The predictor is duck-typed (see `snapaction.predict`):
``classes``, ``info()``, ``predict(path, views)``, ``window_seconds(path)``,
``timeline(path)``. Nothing here imports torch.

Every inference runs on one worker thread, in arrival order: the model gets
the machine's cores to itself, and a request that finds `queue_size` jobs
already waiting is answered 503 at once instead of piling up. Uploads are
streamed to server-named temporary files (see `upload.py`) that are removed
when their request is done, whatever happened.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import ClipError, ConfigError, SnapActionError
from ..video import VideoInfo, probe
from .guard import CONTENT_SECURITY_POLICY, Access, Guard, is_loopback  # noqa: F401  (is_loopback: its home is guard)
from .upload import UploadError, clip_message as _clip_message, receive_video, remove

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_VIEWS = 10
MAX_WINDOWS = 120
"""A long video's timeline has at most about this many windows: the stride grows past half a window to keep it so."""

class ErrorOut(BaseModel):
    detail: str = Field(description="one sentence saying what went wrong and what to do")


class WindowOut(BaseModel):
    start: float = Field(description="seconds from the start of the video")
    end: float
    label: str
    probabilities: dict[str, float]


class PredictOut(BaseModel):
    label: str = Field(description="the most likely class")
    probabilities: dict[str, float] = Field(description="every class of the run; the values sum to 1")
    unsure: bool = Field(description="true when the top class leads the runner-up by less than 0.15 (the model cannot tell them apart here), "
                         "or when the model saw little (the pose model: a body and hands each in under a quarter of its frames)")
    why_unsure: str = Field("", description="why the prediction is unsure, in words; empty when it is not")
    seen: dict[str, int] | None = Field(
        None, description="pose runs only: frames the model looked at, and how many of them had a body and a hand: "
        '{"frames": 16, "body": 3, "hands": 12}')
    margin: float = Field(description="probability of the top class minus that of the runner-up")
    views: int = Field(description="temporal views averaged")
    seconds: float = Field(description="time the model took, decoding included")
    duration: float = Field(description="length of the video in seconds")
    window_seconds: float = Field(description="length of video one model window covers")
    skeleton: dict[str, Any] | None = Field(
        None, description="pose runs only: the skeleton found on the frames the model saw (frame size, joint names, bones, "
        "per frame its time and 33 [x, y, visibility] as fractions of the frame), for drawing over the video")
    masked: str | None = Field(
        None, description="runs trained with --mask only: the frames the model saw with the background hidden, a PNG data URL")
    windows: list[WindowOut] | None = Field(
        None, description="the strongest class per window, when the video is longer than one window and timeline=true"
    )


class InfoOut(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    run: str | None
    classes: list[str]
    backbone: str
    num_frames: int
    metrics: dict[str, Any] = Field(description="the run's validation metrics")
    figures: dict[str, str] = Field(default_factory=dict, description="the run's own pictures, by name, with the URL each is "
                                    "served at: 'curves' (training and validation per epoch), 'confusion_matrix' (its newest eval)")
    max_upload_mb: float
    version: str


class HealthOut(BaseModel):
    status: str


class QueueFull(Exception):
    """Every place in the inference queue is taken."""


class InferenceQueue:
    """One worker thread runs every job in arrival order; at most `size` jobs wait or run at once."""

    def __init__(self, size: int):
        self.size = size
        self.pending = 0
        self._lock = threading.Lock()  # requests may come from several event loops (tests) or threads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapaction-inference")

    async def run(self, job: Callable[[], Any], cleanup: Callable[[], None]) -> Any:
        """`job()`'s result. `cleanup()` runs once the job is over, or at once if it is never queued."""
        with self._lock:
            if self.pending >= self.size:
                cleanup()
                raise QueueFull
            self.pending += 1
        try:
            future = self._executor.submit(job)
        except BaseException:
            self._release()
            cleanup()
            raise
        # Runs when the job ends or is cancelled before it starts, so the queue
        # count and the temporary file stay right even if the client goes away.
        future.add_done_callback(lambda _: (self._release(), cleanup()))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        with self._lock:
            self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def create_app(
    predictor,
    max_upload_mb: float = 200,
    tmp_dir: str | Path | None = None,
    queue_size: int = 16,
    access: Access | None = None,
) -> FastAPI:
    """The FastAPI app serving `predictor`: the page at /, the API under /api, /healthz.

    `max_upload_mb` caps one upload; `tmp_dir` is where uploads are written
    while they are classified (the system's temporary folder by default);
    `queue_size` is how many inference requests may wait or run at once;
    `access` says who may use it (`snapaction.web.guard`: this machine's own page and programs by default).
    """
    problems = []
    if not max_upload_mb > 0:
        problems.append(f"max_upload_mb must be more than 0, got {max_upload_mb}")
    if queue_size < 1:
        problems.append(f"queue_size must be at least 1, got {queue_size}")
    if problems:
        raise ConfigError("invalid web app settings: " + "; ".join(problems))
    info = dict(predictor.info())
    classes = list(predictor.classes)
    if not classes:
        raise ConfigError("the predictor has no classes; serve a trained run folder")
    max_bytes = int(max_upload_mb * 2**20)
    tmp_dir = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.gettempdir())
    queue = InferenceQueue(queue_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        queue.close()

    app = FastAPI(
        title="SnapAction",
        version=__version__,
        description=f"Classify short videos with the run '{info.get('run') or '?'}'. Classes: {', '.join(classes)}.",
        lifespan=lifespan,
        docs_url=None,  # the interactive docs pages load their scripts from a CDN; the schema stays at /openapi.json
        redoc_url=None,
    )
    app.state.queue = queue
    app.add_middleware(Guard, access=access or Access())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    @app.get("/healthz", response_model=HealthOut, summary="Liveness check")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/info", response_model=InfoOut, summary="The run being served")
    def api_info() -> dict:
        figures = {name: f"/api/figures/{name}" for name in run_figures(getattr(predictor, "run_dir", None))}
        return {**info, "classes": classes, "figures": figures, "max_upload_mb": max_upload_mb, "version": __version__}

    @app.get("/api/figures/{name}", summary="One of the run's own pictures (PNG)", responses={404: {"model": ErrorOut}})
    def api_figure(name: str):
        found = run_figures(getattr(predictor, "run_dir", None)).get(name)
        if found is None:
            return _error(404, f"this run has no figure {name!r}; /api/info lists the ones it has.")
        return FileResponse(found, media_type="image/png")

    errors = {code: {"model": ErrorOut} for code in (400, 413, 415, 422, 500, 503)}

    @app.post(
        "/api/predict",
        response_model=PredictOut,
        summary="Classify one video",
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["video"],
                            "properties": {"video": {"type": "string", "format": "binary"}},
                        }
                    }
                },
            }
        },
    )
    async def api_predict(
        request: Request,
        views: int = Query(1, ge=1, le=MAX_VIEWS, description="temporal views to average (test-time augmentation)"),
        timeline: bool = Query(True, description="also classify each window of a video longer than one window"),
    ):
        """Classify the uploaded video (multipart field `video`); errors are JSON with one sentence."""
        try:
            path = await receive_video(request, tmp_dir, max_bytes)
        except UploadError as err:
            return _error(err.status, err.message)
        # Probing runs in the queue too: a hostile header makes even a probe costly, so it waits its turn.
        job = lambda: _infer(predictor, path, probe(path), views, timeline)  # noqa: E731
        try:
            return await queue.run(job, cleanup=lambda: remove(path))
        except QueueFull:
            return _error(
                503,
                f"The server is busy with {queue.size} other videos; try again in a few seconds.",
                headers={"Retry-After": "5"},
            )
        except ClipError as err:
            return _error(422, _clip_message(err, path))
        except Exception:
            log.exception("the model failed on an upload")
            return _error(500, "The model failed on this video; the server log has the details.")

    return app


def run_figures(run_dir) -> dict[str, Path]:
    """The pictures a run folder holds, by name: its training curves, and the confusion matrix of its newest eval.

    Only these fixed names are ever served: nothing of the request becomes a path.
    """
    if run_dir is None:
        return {}
    run_dir = Path(run_dir)
    out = {}
    if (run_dir / "curves.png").is_file():
        out["curves"] = run_dir / "curves.png"
    evals = sorted(run_dir.glob("eval-*/confusion_matrix.png"), key=lambda p: p.stat().st_mtime)
    if evals:
        out["confusion_matrix"] = evals[-1]
    return out


def _infer(predictor, path: Path, clip: VideoInfo, views: int, timeline: bool) -> dict:
    """One request's model work, run on the inference thread."""
    pred = predictor.predict(path, views=views)
    window = float(predictor.window_seconds(path))
    out = {
        "label": pred.label,
        "probabilities": {str(k): float(v) for k, v in pred.probabilities.items()},
        "unsure": bool(pred.unsure),
        "why_unsure": pred.why_unsure(),
        "seen": getattr(pred, "seen", None),
        "margin": float(pred.margin),
        "views": int(pred.views),
        "seconds": float(pred.seconds),
        "duration": float(clip.duration),
        "window_seconds": window,
        "windows": None,
        "skeleton": predictor.skeleton(path) if hasattr(predictor, "skeleton") else None,
        "masked": None,
    }
    if getattr(predictor, "masker", None) is not None:  # the run hides the background: show what the model saw
        from ..mask.preview import masked_view

        out["masked"] = masked_view(predictor, path)
    # A clip more than one frame longer than a window has more than one window to show.
    if timeline and clip.duration - window > 1.0 / clip.fps:
        stride = max(window / 2, clip.duration / MAX_WINDOWS)
        out["windows"] = [_plain(w) for w in predictor.timeline(path, stride_s=stride)]
    return out


def _plain(window) -> dict:
    data = asdict(window) if is_dataclass(window) else dict(vars(window))
    data["probabilities"] = {str(k): float(v) for k, v in data["probabilities"].items()}
    return data


def add_error_handlers(app: FastAPI) -> None:
    """Bad parameters (422) and unexpected errors (500) answered as JSON with one sentence, as every route's errors are."""

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError):
        where = lambda err: ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"  # noqa: E731
        text = "; ".join(f"{where(err)}: {err.get('msg', 'invalid')}" for err in exc.errors())
        return JSONResponse({"detail": f"Invalid request parameters ({text})."}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unexpected error while serving %s", request.url.path)
        return _error(500, "SnapAction hit an internal error while handling this request; the server log has the details.")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port`; `SnapActionError` in one sentence when that fails."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {port}")
    host = host.strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise SnapActionError(f"cannot listen on {host!r}: {err.strerror or err}; pass --host an address of this machine") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        hint = "pick another with --port" if err.errno in (98, 48, 10048) else "pass another --host or --port"
        raise SnapActionError(f"cannot listen on {url(host, port)}: {err.strerror or err}; {hint}") from None
    return sock


def url(host: str, port: int) -> str:
    """http://host:port, with brackets around an IPv6 address."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: FastAPI, sock: socket.socket, log_level: str = "info") -> None:
    """Run `app` with uvicorn on the listening `sock` until Ctrl+C."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
