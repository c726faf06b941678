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
``done`` (the result) or ``failed`` (one sentence). ``started`` says the run's
``trainer``: 'video' runs go epoch by epoch; a 'pose' run trains in one go, has
no epoch events, and its ``done`` has ``pose`` (the classifiers compared, the one
kept, the clips with a person) where an epoch run's has ``kept`` (the metrics.csv
row of the epoch it kept).
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
        self._epochs: dict[int, dict] = {}
        """metrics.csv rows by epoch, as the epoch events gave them."""
        self.trainer = trainer_of(cfg.backbone)
        self.thread = threading.Thread(target=self._run, name=f"snapaction-train-{name}", daemon=True)

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1]["event"] in FINAL

    def start(self) -> None:
        self.emit("started", run=self.name, backbone=self.cfg.backbone, finetune=self.cfg.mode, epochs=self.cfg.epochs,
                  max_minutes=self.cfg.max_minutes, trainer=self.trainer)
        self.thread.start()

    def stop(self) -> None:
        """Ask the run to stop after the step in hand (its folder is still written in full)."""
        self._stop.set()
        self.emit("phase", text="the pose model trains in one go (seconds once landmarks are cached): it ends by itself"
                  if self.trainer == "pose" else "stopping after this step…")

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
            self._epochs[int(event["epoch"])] = {k: v for k, v in event.items() if k != "event"}
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
            if self.trainer == "pose":
                how = {"pose": pose_summary(result)}
            else:
                how = {"kept": self._epochs.get(result.best_epoch)}
            self.emit("done", run=self.name, best_epoch=result.best_epoch, val_accuracy=result.val_accuracy,
                      epochs_run=result.epochs_run, stopped_by=result.stopped_by, seconds=round(result.seconds, 1),
                      skipped=[{"path": p, "reason": r} for p, r in result.skipped], validation=judged, **how)
        except SnapActionError as err:
            self.emit("failed", detail=str(err))
        except Exception as err:  # the server goes on; the page gets a sentence, the log the traceback
            log.exception("training %s failed", self.name)
            self.emit("failed", detail=f"training stopped with an internal error ({type(err).__name__}: {err}); the server log has the details")


def trainer_of(backbone: str) -> str:
    """'pose' for a preset that trains in one go (`Preset.trainer`), else 'video' (epochs)."""
    from ..models.presets import preset

    named = preset(backbone)
    return named.trainer if named is not None else "video"


def pose_summary(result) -> dict:
    """What the page shows of a finished pose run: the classifier kept, each one's validation accuracy, and how many
    clips had a person in enough frames to train or validate on (the others are in `result.skipped`)."""
    from ..run import read_report

    report = read_report(result.run_dir).get("pose", {})
    used = int(report.get("num_train", 0)) + int(report.get("num_val", 0))
    return {"chosen": report.get("chosen"), "val_accuracy": report.get("val_accuracy", {}), "note": report.get("note", ""),
            "train_clips": report.get("num_train", 0), "val_clips": report.get("num_val", 0),
            "clips_with_person": used, "clips": used + len(result.skipped)}


def judge_on_validation(run_dir: Path, data: Path) -> dict | None:
    """Evaluate the run on the clips it validated on (matched by content) into ``run_dir/eval-validation``.

    Returns the report's accuracy and clip count, or None when none of those clips are still there."""
    from ..data.layout import scan
    from ..evaluate import evaluate, write_eval_report
    from ..predict import Predictor
    from ..run import RunInfo, clip_key

    clips = RunInfo.load(run_dir).clips
    wanted, trained = set(clips.get("val", [])), set(clips.get("train", []))
    keyed = [(s, key) for s in scan(data).samples if (key := clip_key(s.path)) in wanted]
    if not keyed:
        return None
    samples = [s for s, _ in keyed]
    judged = evaluate(Predictor.load(run_dir), samples)
    # The picture says so: these clips chose the run's kept epoch, so the matrix is not a held-out figure.
    overlap = {"train": sum(key in trained for _, key in keyed), "val": len(samples), "clips": len(samples)}
    about = {"run": str(run_dir), "data": str(data), "split": "validation clips of the run (chosen its best epoch)",
             "overlap_with_training": overlap}
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
