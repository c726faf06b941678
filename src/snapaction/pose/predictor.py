"""A trained pose run as a predictor: the same methods as `snapaction.predict.Predictor`, so eval, predict
and serve treat every run alike.

Test-time views: the pose classifier always averages a clip with its mirror
when it was trained with mirroring; ``views`` and ``crops`` (pixel ideas) are
accepted and make no difference here.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..data.sampling import Sampling
from ..errors import ClipError
from ..results import Prediction, Window

log = logging.getLogger(__name__)


class PosePredictor:
    """A pose run ready to classify clips of people."""

    backbone = "pose"

    def __init__(self, pipeline, run_dir: Path | None = None, metrics: dict | None = None, clip_seconds: float | None = None):
        self.pipeline = pipeline
        self.classes = list(pipeline.classes)
        self.sampling = Sampling(num_frames=pipeline.settings.frames, mode="uniform")
        self.run_dir = run_dir
        self.metrics = metrics or {}
        self.clip_seconds = clip_seconds

    @classmethod
    def load(cls, run_dir: str | Path, info=None) -> "PosePredictor":
        """The pose run in `run_dir`; landmarks of the clips it classifies are cached beside the training ones."""
        from ..pose.landmarks import landmark_dir, require_mediapipe
        from ..run import RunInfo, load_pose_model, read_report

        require_mediapipe()
        run_dir = Path(run_dir)
        info = info or RunInfo.load(run_dir)
        cache_dir = info.config.get("cache_dir")
        pipeline = load_pose_model(run_dir, landmark_dir(cache_dir) if cache_dir else None)
        report = read_report(run_dir)
        metrics = {k: report[k] for k in ("val_accuracy", "best_epoch") if k in report}
        return cls(pipeline, run_dir, metrics, info.config.get("clip_seconds"))

    def info(self) -> dict:
        """What the web app and reports show about this model."""
        return {"run": self.run_dir.name if self.run_dir else None, "classes": self.classes, "backbone": self.backbone,
                "num_frames": self.sampling.num_frames, "metrics": self.metrics}

    def predict(self, clip, views: int = 1, crops: int = 1) -> Prediction:
        """Probabilities for every class of one clip (a video file or frame folder). Raises `ClipError`."""
        if not isinstance(clip, (str, Path)):
            raise ValueError("the pose model classifies clips on disk (a path), not decoded frames")
        started = time.perf_counter()
        values, seen = self.pipeline.predict_seen(clip)
        return self._prediction(values, time.perf_counter() - started, seen)

    def predict_many(self, clips, views: int = 1, crops: int = 1, batch_clips: int = 4):
        """Predictions for many clips, yielded as (clip, Prediction or ClipError): a bad clip never stops the rest."""
        for clip in clips:
            try:
                yield clip, self.predict(clip)
            except ClipError as err:
                log.warning("%s", err)
                yield clip, err

    def skeleton(self, path) -> dict:
        """The skeleton found on the frames the model saw in a clip, JSON-ready (`snapaction.pose.preview.skeleton_json`)."""
        from ..pose.pipeline import clip_landmarks
        from ..pose.preview import skeleton_json

        return skeleton_json(clip_landmarks(path, self.pipeline.settings, self.pipeline.cache))

    def window_seconds(self, path) -> float:
        """Seconds of video one window covers: the run's typical training clip, else 2 s."""
        return float(self.clip_seconds or 2.0)

    def timeline(self, path, stride_s: float | None = None, window_s: float | None = None, batch: int = 8) -> list[Window]:
        """Probabilities for windows slid over a video; every window is classified, with nobody in view or not."""
        from ..pose.features import pose_sequence
        from ..pose.landmarks import grid_indices, landmarks_at
        from ..timeline import window_frames, window_starts
        from ..video import probe

        info = probe(path)
        window_s = window_s or self.window_seconds(path)
        settings = self.pipeline.settings
        windows = []
        for start in window_starts(info.duration, window_s, stride_s):
            first, length = window_frames(info, start, window_s)
            landmarks = landmarks_at(path, first + grid_indices(length, settings.frames), settings.decode_size, info, settings.hands)
            sequence = pose_sequence(landmarks)
            probs = self.pipeline.model.predict_proba([sequence])[0]
            values = {c: float(p) for c, p in zip(self.classes, probs)}
            windows.append(Window(float(start), float(min(start + window_s, info.duration)), self.classes[int(np.argmax(probs))], values))
        return windows

    def _prediction(self, values: dict[str, float], seconds: float, seen: dict[str, int] | None = None) -> Prediction:
        from ..pose.features import thin_evidence

        total = sum(values.values())
        values = {c: v / total for c, v in values.items()}
        thin = seen is not None and thin_evidence(seen, self.pipeline.settings.min_person_frames)
        return Prediction(max(values, key=values.get), values, 1, seconds, seen, thin)
