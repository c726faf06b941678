"""Prediction: a trained run (or a hub classification checkpoint) applied to clips.

`Predictor.load(run_dir)` rebuilds backbone, weights (LoRA merged for speed),
sampling and preprocessing from the run folder alone. Test-time augmentation
takes K temporal views x 1 or 3 spatial crops of a clip, runs them as one
batch, and averages the probabilities.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from .data.sampling import Sampling, view_indices
from .errors import ClipError
from .results import Prediction, Window  # noqa: F401  what every predictor returns

log = logging.getLogger(__name__)

class Predictor:
    """A model ready to classify clips; holds weights, classes, sampling and preprocessing."""

    masker = None
    """A `snapaction.mask.Masker` for a run trained on masked clips: new clips are masked the same way."""
    seek = "exact"
    """How clips are read: 'exact' frames, or 'fast' (the nearest keyframes, for long clips: `snapaction.video.seek`)."""

    def __init__(self, model, classes: list[str], sampling: Sampling, preprocessing, backbone: str,
                 run_dir: Path | None = None, metrics: dict | None = None, clip_seconds: float | None = None,
                 device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.classes = list(classes)
        self.sampling = sampling
        self.preprocessing = preprocessing
        self.backbone = backbone
        self.run_dir = run_dir
        self.metrics = metrics or {}
        self.clip_seconds = clip_seconds

    @classmethod
    def load(cls, run_dir: str | Path, device: str | None = None, engine: str = "auto", precision: str = "fp32",
             seek: str = "exact") -> "Predictor":
        """Rebuild a trained run (or its ONNX export) from its folder; `RunError` in one sentence when it is not a usable run.

        `engine`, `precision` and `seek` choose the inference path (`snapaction.engines`; fp32 and exact are the reference).
        A pose run gives a `snapaction.pose.predictor.PosePredictor`, which has the same methods."""
        from .engines import load_engine
        from .preprocess import Preprocessing
        from .run import RunInfo, read_report

        run_dir = Path(run_dir)
        info = RunInfo.load(run_dir)
        if info.weights == "pose":  # landmarks and a classifier: its own predictor, with the same methods
            from .engines import check_plain
            from .pose.predictor import PosePredictor

            check_plain(engine, precision, seek, f"{run_dir} (a pose model)")
            return PosePredictor.load(run_dir, info)
        model = load_engine(run_dir, info, engine, precision, device)
        metrics = read_report(run_dir)
        predictor = cls(
            model,
            info.classes,
            Sampling(**info.sampling),
            Preprocessing.from_dict(info.preprocessing),
            info.backbone,
            run_dir=run_dir,
            metrics={k: metrics[k] for k in ("val_accuracy", "val_loss", "best_epoch") if k in metrics},
            clip_seconds=info.config.get("clip_seconds"),
            device=device,
        )
        predictor.seek = seek
        from .mask import run_masker

        predictor.masker = run_masker(info)
        return predictor

    @classmethod
    def from_backbone(cls, backbone: str, device: str | None = None, precision: str = "fp32") -> "Predictor":
        """A hub (or local) classification checkpoint used as it is, with its own labels: zero-shot (PyTorch engine)."""
        from .models.hub import resolve_backbone

        folder = resolve_backbone(backbone)  # before the model libraries load: a missing one is said at once
        from transformers import AutoModelForVideoClassification

        from .models import scratch  # noqa: F401  registers the scratch architecture
        from .engines import resolve_precision
        from .engines.pytorch import torch_model
        from .preprocess import Preprocessing

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = torch_model(AutoModelForVideoClassification.from_pretrained(folder),
                            resolve_precision(precision, "torch", device), torch.device(device))
        id2label = model.config.id2label
        classes = [id2label[i] for i in range(len(id2label))]
        frames = getattr(model.config, "num_frames", None) or 16
        return cls(model, classes, Sampling(num_frames=frames), Preprocessing.from_backbone(folder), backbone, device=device)

    def info(self) -> dict:
        """What the web app and reports show about this model."""
        return {
            "run": self.run_dir.name if self.run_dir else None,
            "classes": self.classes,
            "backbone": self.backbone,
            "num_frames": self.sampling.num_frames,
            "metrics": self.metrics,
        }

    # --- clips ----------------------------------------------------------------

    def views(self, clip, views: int = 1, crops: int = 1) -> torch.Tensor:
        """Model input for one clip: float (views * crops, T, C, h, w), normalised.

        `clip` is a path (video file or frame folder) or uint8 frames (T, H, W, C).
        """
        from .video import probe, read_frames, read_frames_fast

        if isinstance(clip, (str, Path)):
            info = probe(clip)
            indices = view_indices(info.num_frames, self.sampling, views)  # (views, T)
            wanted = np.unique(indices)
            frames = (read_frames_fast if self.seek == "fast" else read_frames)(clip, wanted, size=self.preprocessing.size, info=info)
            if self.masker is not None:
                frames = self.masker.masked_on_grid(clip, wanted, frames, self.sampling.grid, info)
            position = {int(i): k for k, i in enumerate(wanted)}
            stacks = [frames[[position[int(i)] for i in row]] for row in indices]
        else:
            frames = np.asarray(clip)
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(f"frames must be uint8 (T, H, W, 3), got shape {frames.shape}")
            if self.masker is not None:
                frames = self.masker.masked_array(frames)
            stacks = [frames[row] for row in view_indices(len(frames), self.sampling, views)]
        return torch.cat([self.preprocessing.crops(stack, crops) for stack in stacks])

    @torch.no_grad()
    def probabilities(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities float (B, K) for a batch of model inputs (B, T, C, h, w)."""
        logits = self.model(pixel_values=pixel_values.to(self.device)).logits
        return torch.softmax(logits.float(), dim=-1).cpu()

    def predict(self, clip, views: int = 1, crops: int = 1) -> Prediction:
        """Probabilities for every class of one clip: the mean over views x crops, run as one batch."""
        started = time.perf_counter()
        probs = self.probabilities(self.views(clip, views, crops)).mean(0)
        return self._prediction(probs, views * crops, time.perf_counter() - started)

    def predict_many(self, clips, views: int = 1, crops: int = 1, batch_clips: int = 4):
        """Predictions for many clips, yielded as (clip, Prediction or ClipError): a bad clip never stops the rest."""
        pending: list[tuple[object, torch.Tensor]] = []
        for clip in clips:
            try:
                pending.append((clip, self.views(clip, views, crops)))
            except ClipError as err:
                log.warning("%s", err)
                yield clip, err
            if len(pending) >= batch_clips:
                yield from self._run(pending)
                pending = []
        yield from self._run(pending)

    def _run(self, pending):
        if not pending:
            return
        started = time.perf_counter()
        probs = self.probabilities(torch.cat([x for _, x in pending]))
        seconds = (time.perf_counter() - started) / len(pending)
        start = 0
        for clip, x in pending:
            yield clip, self._prediction(probs[start : start + len(x)].mean(0), len(x), seconds)
            start += len(x)

    def _prediction(self, probs: torch.Tensor, views: int, seconds: float) -> Prediction:
        probs = probs / probs.sum()
        values = {c: float(p) for c, p in zip(self.classes, probs.tolist())}
        return Prediction(self.classes[int(probs.argmax())], values, views, seconds)

    # --- long videos ----------------------------------------------------------

    def window_seconds(self, path) -> float:
        """Seconds of video one model window covers: the run's typical training clip, else 2 s."""
        return float(self.clip_seconds or 2.0)

    def timeline(self, path, stride_s: float | None = None, window_s: float | None = None, batch: int = 8) -> list[Window]:
        """Probabilities for windows slid over a whole video; memory stays flat however long it is."""
        from .timeline import window_starts
        from .video import probe

        info = probe(path)
        window_s = window_s or self.window_seconds(path)
        starts = window_starts(info.duration, window_s, stride_s)
        windows: list[Window] = []
        for chunk in range(0, len(starts), batch):
            group = starts[chunk : chunk + batch]
            inputs = [self._window_input(path, info, s, window_s) for s in group]
            probs = self.probabilities(torch.stack(inputs))
            for s, p in zip(group, probs):
                values = {c: float(v) for c, v in zip(self.classes, p.tolist())}
                windows.append(Window(float(s), float(min(s + window_s, info.duration)), self.classes[int(p.argmax())], values))
        return windows

    def _window_input(self, path, info, start: float, window_s: float) -> torch.Tensor:
        from .data.sampling import sample_indices
        from .timeline import window_frames
        from .video import read_frames

        first, length = window_frames(info, start, window_s)
        indices = first + sample_indices(length, self.sampling)
        frames = read_frames(path, indices, size=self.preprocessing.size, info=info)
        if self.masker is not None:
            frames = self.masker.masked(path, indices, frames, info)
        return self.preprocessing(frames)


def load_predictor(run: str | Path | None = None, backbone: str | None = None, device: str | None = None,
                   engine: str = "auto", precision: str = "fp32", seek: str = "exact") -> Predictor:
    """A trained run's `Predictor`, or with `backbone` a classification checkpoint's own (zero-shot).

    With `backbone`, `run` must not be a run folder (the command line passes its first path here to check).
    """
    from .errors import ConfigError
    from .run import is_run

    if backbone and run is not None and is_run(run):
        raise ConfigError(f"{run} is a run folder and --backbone names a checkpoint: pass one or the other")
    if backbone:
        if engine == "onnx":
            raise ConfigError("--engine onnx runs an export folder (snapaction export RUN --onnx OUT); --backbone runs on --engine torch")
        predictor = Predictor.from_backbone(backbone, device=device, precision=precision)
        predictor.seek = seek
        return predictor
    if run is None:
        raise ConfigError("pass a run folder (or --backbone CHECKPOINT)")
    return Predictor.load(run, device=device, engine=engine, precision=precision, seek=seek)


def write_csv(path: str | Path, rows: list[tuple[str, Prediction]]) -> None:
    """Kaggle-style ``id,class``: one row per (clip id, prediction), in the order given."""
    import csv
    import io

    from .files import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "class"])
    writer.writerows((clip_id, result.label) for clip_id, result in rows)
    atomic_write(Path(path), buf.getvalue())


def write_json(path: str | Path, predictor: Predictor, rows: list[tuple[str, Path, Prediction]], views: int, crops: int,
               skipped: list[tuple[str, str]]) -> None:
    """Every clip's probabilities for every class, the model's description, and the inputs skipped with why."""
    import json

    from .files import atomic_write

    atomic_write(Path(path), json.dumps({
        "model": predictor.info(),
        "views": views,
        "crops": crops,
        "predictions": [{"id": clip_id, "path": str(clip), **result.to_dict()} for clip_id, clip, result in rows],
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
    }, indent=1) + "\n")
