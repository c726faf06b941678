"""Training from the studio: one run at a time on a background thread, its progress as a list of events.

The run is `snapaction.training.train` with a progress hook, so its folder is
exactly what ``snapaction train`` writes. Stopping is cooperative: the hook
answers True, the step in hand ends, that epoch is validated, and the folder
is written in full. When training ends, the run is judged on its own
validation clips (found by content, so clips recorded meanwhile are not
mistaken for them) as ``snapaction eval`` does, which gives the page its
confusion matrix.

Events are dicts with an ``event`` kind and a sequence number ``id``:
``started``, ``phase`` (a sentence), ``step`` (at most every `STEP_EVERY_S`),
``epoch`` (a metrics.csv row with ``planned`` and ``eta_s``), and one final
``done`` (the result) or ``failed`` (one sentence).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..errors import SnapActionError

log = logging.getLogger(__name__)

STEP_EVERY_S = 0.5
FINAL = ("done", "failed")


class Busy(Exception):
    """A run is already training."""


class TrainingJob:
    """One training run on its own thread; `events` grows as it goes and ends with 'done' or 'failed'."""

    def __init__(self, name: str, cfg, started_by: str = "studio"):
        self.name = name
        self.cfg = cfg
        self.events: list[dict] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._last_step = 0.0
        self._epoch_seconds: list[float] = []
        self.thread = threading.Thread(target=self._run, name=f"snapaction-train-{name}", daemon=True)

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1]["event"] in FINAL

    def start(self) -> None:
        self.emit("started", run=self.name, backbone=self.cfg.backbone, finetune=self.cfg.mode, epochs=self.cfg.epochs,
                  max_minutes=self.cfg.max_minutes)
        self.thread.start()

    def stop(self) -> None:
        """Ask the run to stop after the step in hand (its folder is still written in full)."""
        self._stop.set()
        from ..models.presets import preset

        named = preset(self.cfg.backbone)
        one_go = named is not None and named.trainer == "pose"
        self.emit("phase", text="the pose model trains in one go (seconds once landmarks are cached): it ends by itself"
                  if one_go else "stopping after this step…")

    def emit(self, kind: str, **fields) -> None:
        with self._changed:
            self.events.append({"event": kind, "id": len(self.events), "time": time.time(), **fields})
            self._changed.notify_all()

    def wait(self, after: int, timeout: float) -> list[dict]:
        """The events after number `after` (-1: all), waiting up to `timeout` seconds for one to come."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.events) > after + 1, timeout)
            return self.events[after + 1:]

    def _progress(self, event: dict) -> bool:
        if event["event"] == "epoch":
            self._epoch_seconds.append(float(event.get("seconds", 0)))
            left = max(0, int(event["planned"]) - int(event["epoch"]))
            mean = sum(self._epoch_seconds) / len(self._epoch_seconds)
            self.emit("epoch", **event, eta_s=round(left * mean, 1))
        elif time.monotonic() - self._last_step >= STEP_EVERY_S:
            self._last_step = time.monotonic()
            self.emit("step", **{k: v for k, v in event.items() if k != "event"})
        return self._stop.is_set()

    def _run(self) -> None:
        from ..training import train

        try:
            self.emit("phase", text="reading the clips and building the model…")
            result = train(self.cfg, progress=self._progress)
            self.emit("phase", text="judging the run on its validation clips…")
            try:
                judged = judge_on_validation(result.run_dir, Path(self.cfg.data))
            except SnapActionError as err:  # the run itself is complete: say why it has no confusion matrix
                judged = {"error": str(err)}
            self.emit("done", run=self.name, best_epoch=result.best_epoch, val_accuracy=result.val_accuracy,
                      epochs_run=result.epochs_run, stopped_by=result.stopped_by, seconds=round(result.seconds, 1),
                      skipped=[{"path": p, "reason": r} for p, r in result.skipped], validation=judged)
        except SnapActionError as err:
            self.emit("failed", detail=str(err))
        except Exception as err:  # the server goes on; the page gets a sentence, the log the traceback
            log.exception("training %s failed", self.name)
            self.emit("failed", detail=f"training stopped with an internal error ({type(err).__name__}: {err}); the server log has the details")


def judge_on_validation(run_dir: Path, data: Path) -> dict | None:
    """Evaluate the run on the clips it validated on (matched by content) into ``run_dir/eval-validation``.

    Returns the report's accuracy and clip count, or None when none of those clips are still there."""
    from ..data.layout import scan
    from ..evaluate import evaluate, write_eval_report
    from ..predict import Predictor
    from ..run import RunInfo, clip_key

    wanted = set(RunInfo.load(run_dir).clips.get("val", []))
    samples = [s for s in scan(data).samples if clip_key(s.path) in wanted]
    if not samples:
        return None
    judged = evaluate(Predictor.load(run_dir), samples)
    about = {"run": str(run_dir), "data": str(data), "split": "validation clips of the run (chosen its best epoch)"}
    report = write_eval_report(Path(run_dir) / "eval-validation", judged, None, about)
    return {"accuracy": float(report["accuracy"]), "clips": len(judged.paths)}


class Trainer:
    """At most one `TrainingJob` running; the newest job (running or not) stays readable."""

    def __init__(self):
        self.job: TrainingJob | None = None
        self._lock = threading.Lock()

    def start(self, name: str, cfg) -> TrainingJob:
        """Start training `cfg` as run `name`; `Busy` while another run trains."""
        with self._lock:
            if self.job is not None and not self.job.finished:
                raise Busy(self.job.name)
            self.job = TrainingJob(name, cfg)
            self.job.start()
            return self.job

    def running(self) -> TrainingJob | None:
        job = self.job
        return job if job is not None and not job.finished else None
