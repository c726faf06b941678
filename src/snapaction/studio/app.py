"""The studio's FastAPI app: classes and clips, training with live progress, and live predictions.

``create_studio_app(project_dir)`` builds it; ``snapaction.web.app.serve`` runs
it. Routes (errors are JSON with one sentence, ``{"detail": ...}``):

    GET    /                                   the page
    GET    /api/project                        classes, clips, warnings, models, runs, the training state
    POST   /api/classes                        {"name"}                 create a class
    PATCH  /api/classes/{name}                 {"name"}                 rename it
    DELETE /api/classes/{name}                                          move it to the trash -> {"trash": id}
    POST   /api/classes/{name}/clips           multipart field 'video'  add a clip (a dropped file keeps its name)
    GET    /api/classes/{name}/clips/{clip}                             the clip's file
    GET    /api/classes/{name}/clips/{clip}/poster                      its first frame (JPEG), the page's thumbnail
    DELETE /api/classes/{name}/clips/{clip}                             move it to the trash -> {"trash": id}
    POST   /api/trash/{id}/restore                                      undo a deletion
    GET    /api/runs/{run}/figures/{figure}                             curves / confusion_matrix (PNG)
    POST   /api/train                          {"model", ...}           start training (409 while one runs)
    POST   /api/train/stop                                              stop it after the step in hand
    GET    /api/train/events?after=N                                    its events (server-sent events)
    WS     /api/live/{run}                                              frames in, probabilities out
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
from pathlib import Path

from fastapi import Body, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import ClipError, SnapActionError
from ..video import probe
from ..web.guard import Access, Guard
from ..web.app import CONTENT_SECURITY_POLICY, STATIC as WEB_STATIC, add_error_handlers, run_figures
from ..web.upload import UploadError, clip_message, receive_upload, remove
from .jobs import Busy, Trainer, trainer_of
from .project import Project, ProjectError, check_name

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MODELS = ("scratch", "pose", "folder")
CLIP_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".mov": "video/quicktime",
              ".avi": "video/x-msvideo", ".m4v": "video/mp4"}


class NameIn(BaseModel):
    name: str = Field(description="1-64 letters, digits, '_', '-' or spaces")


class TrainIn(BaseModel):
    model: str = Field("scratch", description="'scratch', 'pose' (needs snapaction[pose]) or 'folder' (a local backbone)")
    backbone: str | None = Field(None, description="for model 'folder': the folder written by save_pretrained")
    finetune: str = Field("lora", description="for model 'folder': 'lora' or 'probe'")
    epochs: int = Field(30, ge=1, le=10000)
    max_minutes: float | None = Field(None, gt=0, description="time budget; the learning rate is fitted to it")
    batch_size: int = Field(8, ge=1, le=256)
    name: str | None = Field(None, description="the run's folder name under runs/ (default: the date and time)")


def create_studio_app(project_dir: str | Path, run: str | Path | None = None, cache_dir: str | None = None,
                      max_upload_mb: float = 200, access=None) -> FastAPI:
    """The studio over the project folder `project_dir` (created if missing).

    `run`: a run folder trained elsewhere (by the CLI) offered for live mode beside the project's own runs;
    `cache_dir`: where training caches decoded clips (default: `snapaction train`'s);
    `access`: who may use it (`snapaction.web.guard.Access`: this machine's own page and programs by default).
    """
    from ..run import RunInfo

    project = Project(project_dir)
    extra = {}
    if run is not None:
        RunInfo.load(run)  # a wrong folder is one sentence before the server starts
        extra[Path(run).name] = Path(run)
    trainer = Trainer()
    max_bytes = int(max_upload_mb * 2**20)
    predictors = _Predictors()

    app = FastAPI(title="SnapAction studio", version=__version__, docs_url=None, redoc_url=None,
                  description="Classes of clips, training with live progress, and live predictions, on this machine.")
    app.state.project, app.state.trainer = project, trainer
    app.add_middleware(Guard, access=access or Access())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/web-static", StaticFiles(directory=WEB_STATIC), name="web-static")  # the serve page's stylesheet, shared
    add_error_handlers(app)

    @app.exception_handler(ProjectError)
    async def project_error(request: Request, exc: ProjectError):
        return _error(exc.status, str(exc))

    def runs() -> dict[str, Path]:
        from ..run import is_run

        found = dict(extra)
        for folder in sorted(project.runs.iterdir(), key=lambda p: p.stat().st_mtime):
            if folder.name not in found and is_run(folder):
                found[folder.name] = folder
        return found

    def run_dir(name: str) -> Path:
        found = runs()
        if name not in found:
            raise ProjectError(404, f"there is no run {name!r}; the studio has {sorted(found) or 'no runs yet: train one'}")
        return found[name]

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/project", summary="Classes, clips, warnings, models, runs and the training state")
    def api_project(model: str | None = Query(None, description="'pose': each class also says in how many of its clips "
                                               "the pose model saw a person (from landmarks cached by training)")) -> dict:
        job = trainer.job
        summary = project.summary()
        if model == "pose":
            from ..pose.landmarks import landmark_dir
            from ..training.config import DEFAULT_CACHE

            for entry in summary["classes"]:
                entry["people"] = project.people(entry["name"], landmark_dir(cache_dir or DEFAULT_CACHE))
        return {**summary, "models": model_options(), "runs": [_run_entry(n, p) for n, p in runs().items()],
                "training": None if job is None else {"run": job.name, "finished": job.finished, "events": len(job.events)},
                "max_upload_mb": max_upload_mb, "version": __version__}

    @app.post("/api/classes", status_code=201)
    def api_add_class(body: NameIn) -> dict:
        return {"name": project.add_class(body.name)}

    def not_while_training(what: str) -> None:
        job = trainer.running()
        if job is not None:  # its clips are being read: adding is fine, taking away is not
            raise ProjectError(409, f"the run {job.name} is training on these clips; {what} once it ends (or stop it)")

    @app.patch("/api/classes/{name}")
    def api_rename_class(name: str, body: NameIn) -> dict:
        not_while_training("rename a class")
        return {"name": project.rename_class(name, body.name)}

    @app.delete("/api/classes/{name}")
    def api_delete_class(name: str) -> dict:
        not_while_training("delete a class")
        return {"trash": project.delete_class(name)}

    @app.post("/api/classes/{name}/clips", status_code=201, summary="Add a clip (multipart field 'video')")
    async def api_add_clip(name: str, request: Request,
                           source: str = Query("file", pattern="^(webcam|file)$", description="how the clip was made")):
        project.class_dir(name)  # 404 before the body is read
        try:
            upload = await receive_upload(request, project.incoming, max_bytes)
        except UploadError as err:
            return _error(err.status, err.message)
        path = upload.path
        try:
            info = await run_in_threadpool(probe, path)
            # A file keeps its own name (made safe, numbered when taken); a recording is named by its time.
            stem = upload.filename if source == "file" else None
            clip = project.add_clip(name, path, stem, fallback=f"{source}-{time.strftime('%Y%m%d-%H%M%S')}")
        except ClipError as err:
            return _error(422, clip_message(err, path))
        finally:
            remove(path)  # gone already when it was moved into the class
        return {"class": name, "clip": clip, "seconds": round(info.duration, 2), "frames": info.num_frames}

    @app.get("/api/classes/{name}/clips/{clip}", summary="The clip's file")
    def api_clip(name: str, clip: str):
        path = project.clip_path(name, clip)
        return FileResponse(path, media_type=CLIP_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    @app.get("/api/classes/{name}/clips/{clip}/poster", summary="The clip's first frame (JPEG)")
    def api_poster(name: str, clip: str):
        return Response(project.poster(name, clip), media_type="image/jpeg")

    @app.delete("/api/classes/{name}/clips/{clip}")
    def api_delete_clip(name: str, clip: str) -> dict:
        not_while_training("delete a clip")
        return {"trash": project.delete_clip(name, clip)}

    @app.post("/api/trash/{trash_id}/restore")
    def api_restore(trash_id: str) -> dict:
        return {"classes": project.restore(trash_id)}

    @app.get("/api/runs/{name}/figures/{figure}", summary="One of a run's pictures (PNG)")
    def api_figure(name: str, figure: str):
        found = run_figures(run_dir(name)).get(figure)
        if found is None:
            return _error(404, f"run {name!r} has no figure {figure!r}; /api/project lists the ones it has")
        return FileResponse(found, media_type="image/png")

    @app.post("/api/train", status_code=202, summary="Start training a run on the project's clips")
    def api_train(body: TrainIn = Body(...)) -> dict:
        cfg = _train_config(project, body, cache_dir)
        try:
            job = trainer.start(Path(cfg.out).name, cfg)
        except Busy as busy:
            return _error(409, f"the run {busy} is training now; only one trains at a time: wait for it to end or stop it")
        return {"run": job.name, "events": "/api/train/events"}

    @app.post("/api/train/stop")
    def api_stop() -> dict:
        job = trainer.running()
        if job is None:
            return _error(409, "no run is training now, so there is nothing to stop")
        job.stop()
        return {"run": job.name, "stopping": True}

    @app.get("/api/train/events", summary="The training run's events, as server-sent events (text/event-stream)")
    async def api_events(request: Request, after: int = Query(-1, ge=-1, description="send the events after this id")):
        job = trainer.job
        if job is None:
            return _error(404, "no run has trained since the studio started; press Train first")
        last_seen = request.headers.get("last-event-id", "")
        after = max(after, int(last_seen)) if last_seen.isdigit() else after

        async def stream():
            last = after
            while True:
                events = await run_in_threadpool(job.wait, last, 5.0)
                if not events:
                    if job.finished or await request.is_disconnected():
                        return
                    yield ": still training\n\n"
                    continue
                for event in events:
                    last = event["id"]
                    yield f"id: {last}\nevent: {event['event']}\ndata: {json.dumps(event)}\n\n"
                if job.finished and last == len(job.events) - 1:
                    return

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.websocket("/api/live/{name}")
    async def api_live(ws: WebSocket, name: str):
        """Binary messages in: 8 bytes of the frame's time (float64 ms, little-endian), then a JPEG.
        JSON out: 'ready' (the rate and width to send), 'prediction' (with the frame_time it saw), 'error'."""
        from .live import LiveModel

        await ws.accept()
        try:
            predictor = await run_in_threadpool(predictors.get, run_dir(name))
        except SnapActionError as err:
            await ws.send_json({"type": "error", "detail": str(err)})
            await ws.close(code=1008)
            return
        live = LiveModel(predictor)
        await ws.send_json({"type": "ready", "run": name, **live.settings()})
        fresh = asyncio.Event()

        async def predict_newest():  # one prediction at a time, always of the newest window: a slow model skips frames
            while True:
                await fresh.wait()
                fresh.clear()
                try:
                    result = await run_in_threadpool(live.predict)
                    if result is not None:
                        await ws.send_json({"type": "prediction", **result, "frame_time": result["frame_time"] * 1000})
                except (WebSocketDisconnect, RuntimeError):  # the page went away mid-prediction
                    return
                except Exception:
                    log.exception("live prediction failed")
                    await ws.send_json({"type": "error", "detail": "the model failed on the live frames; the server log has the details"})
                    return

        worker = asyncio.create_task(predict_newest())
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if not data or len(data) < 9:
                    await ws.send_json({"type": "error", "detail": "send each frame as one binary message: 8 bytes of its time "
                                        "(float64 milliseconds, little-endian), then the JPEG"})
                    continue
                (t_ms,) = struct.unpack("<d", data[:8])
                try:
                    await run_in_threadpool(live.add_frame, t_ms / 1000, data[8:])
                except ValueError as err:
                    await ws.send_json({"type": "error", "detail": str(err)})
                    continue
                fresh.set()
        except WebSocketDisconnect:
            pass
        finally:
            worker.cancel()

    return app


class _Predictors:
    """The newest run loaded for live mode, kept while its snapaction.json is unchanged (one at a time: memory)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded: tuple | None = None

    def get(self, run_dir: Path):
        from ..predict import Predictor

        key = (str(run_dir), (run_dir / "snapaction.json").stat().st_mtime_ns)
        with self._lock:
            if self._loaded is None or self._loaded[0] != key:
                self._loaded = (key, Predictor.load(run_dir))
            return self._loaded[1]


def model_options() -> list[dict]:
    """The models the page offers, each with whether it can train here and, if not, why, and whether it trains in
    epochs (a pose model trains in one go: the page's epochs and time budget do not apply)."""
    from ..models.presets import preset

    out = []
    for name, label in (("scratch", "Small model from scratch (no download)"), ("pose", "Body pose (people)"),
                        ("folder", "A backbone folder on this computer (LoRA or probe)")):
        named = preset(name)
        entry = {"name": name, "label": label, "available": True, "reason": None,
                 "epochs": named is None or named.trainer != "pose"}
        if named is not None and named.available is not None:
            try:
                named.available()
            except SnapActionError as err:
                entry.update(available=False, reason=str(err))
        out.append(entry)
    return out


def _train_config(project: Project, body: TrainIn, cache_dir: str | None):
    """The `TrainConfig` a train request asks for; `ProjectError` (400/409) in one sentence when it cannot train."""
    from ..models.hub import check_backbone
    from ..training.config import TrainConfig

    if body.model not in MODELS:
        raise ProjectError(400, f"model {body.model!r} is not one the studio trains; choose one of {list(MODELS)}")
    if body.model == "folder":
        if not body.backbone:
            raise ProjectError(400, "model 'folder' needs the backbone folder's path (written by save_pretrained)")
        if body.finetune not in ("lora", "probe"):
            raise ProjectError(400, f"finetune {body.finetune!r} is not offered here; choose 'lora' or 'probe'")
    backbone = body.backbone if body.model == "folder" else body.model
    name = check_name(body.name, "run") if body.name else time.strftime("run-%Y%m%d-%H%M%S")
    if (project.runs / name).exists():
        raise ProjectError(409, f"runs/{name} exists already; choose another run name")
    summary = project.summary()
    if not summary["ready"]:
        counts = ", ".join(f"{c['name']} ({c['usable']})" for c in summary["classes"]) or "no classes yet"
        raise ProjectError(400, f"training needs usable clips in at least two classes; usable clips now: {counts}")
    values = dict(data=str(project.data), out=str(project.runs / name), backbone=backbone, epochs=body.epochs,
                  max_minutes=body.max_minutes, batch_size=body.batch_size,
                  finetune=body.finetune if body.model == "folder" else None)
    if cache_dir:
        values["cache_dir"] = cache_dir
    try:
        check_backbone(backbone)
        return TrainConfig(**values)
    except SnapActionError as err:
        raise ProjectError(400, str(err)) from None


def _run_entry(name: str, folder: Path) -> dict:
    from ..run import RunInfo, read_report

    info, report = RunInfo.load(folder), read_report(folder)
    return {"name": name, "path": str(folder), "classes": info.classes, "backbone": info.backbone,
            "trainer": trainer_of(info.backbone), "val_accuracy": report.get("val_accuracy"), "epochs_run": report.get("epochs_run"),
            "figures": {f: f"/api/runs/{name}/figures/{f}" for f in run_figures(folder)}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)
