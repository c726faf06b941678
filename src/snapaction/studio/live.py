"""Live mode: a webcam stream classified continuously, from a sliding window of its newest frames.

The page sends small JPEG frames at `LiveModel.settings()['fps']`, each with the
time it was taken. The window holds the frames of the last ``window_seconds``
(the run's typical training clip), and every prediction sees the window as a
clip of that length: the frames are spread over it as training spread them
over a clip. A video model classifies the window's frames; the pose model
finds the skeleton on each frame as it arrives (so a prediction only runs its
small classifier) and classifies the window's skeletons.
"""

from __future__ import annotations

import io
import math
import time
from collections import deque

import numpy as np

from ..errors import ClipError

MAX_FPS = 15
MIN_FPS = 4
READY_SHARE = 0.75
"""A window predicts once its frames span this share of `window_seconds`: sooner, motion would look faster than it was."""


def decode_jpeg(data: bytes) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a JPEG (or PNG) image; `ValueError` with one sentence when it is not one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG"):
                raise ValueError(f"a live frame must be a JPEG or PNG image, got {image.format}")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise ValueError(f"a live frame must be a JPEG or PNG image; these {len(data)} bytes are not one") from None


class LiveWindow:
    """The frames (or per-frame features) of the newest `seconds` of a stream, oldest first."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.items: deque[tuple[float, object]] = deque()

    def add(self, t: float, item) -> None:
        """Add what frame time `t` (seconds) gave; frames out of order restart the window (a new stream)."""
        if self.items and t < self.items[-1][0]:
            self.items.clear()
        self.items.append((t, item))
        while self.items and self.items[0][0] < t - self.seconds - 1e-9:
            self.items.popleft()

    @property
    def span(self) -> float:
        return self.items[-1][0] - self.items[0][0] if self.items else 0.0

    @property
    def ready(self) -> bool:
        return len(self.items) >= 2 and self.span >= READY_SHARE * self.seconds

    def newest(self) -> float:
        return self.items[-1][0]

    def values(self) -> list:
        return [item for _, item in self.items]


class LiveModel:
    """A run's predictor made to classify a stream: `add_frame` as frames come, `predict` when wanted."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.pose = getattr(predictor, "pipeline", None) is not None
        self._seen = None
        self.window_seconds = float(predictor.window_seconds(None))
        grid = predictor.pipeline.settings.frames if self.pose else (predictor.sampling.grid or predictor.sampling.num_frames)
        self.fps = min(MAX_FPS, max(MIN_FPS, math.ceil(grid / self.window_seconds)))
        self.window = LiveWindow(self.window_seconds)

    def settings(self) -> dict:
        """What the page needs to send frames: rate, width, and the window the model sees."""
        return {"classes": list(self.predictor.classes), "fps": self.fps, "window_seconds": self.window_seconds,
                "width": 480 if self.pose else 160, "backbone": self.predictor.backbone}

    def add_frame(self, t: float, jpeg: bytes) -> None:
        """One frame taken at `t` seconds; `ValueError` (one sentence) when it is not an image."""
        frame = decode_jpeg(jpeg)
        if self.pose:
            from ..pose.landmarks import frames_landmarks

            found = frames_landmarks(frame[None], [t], frame.shape[1], frame.shape[0], None, self.predictor.pipeline.settings.hands)
            self.window.add(t, (found.image[0], found.world[0], found.visibility[0], found.present[0], frame.shape,
                                found.hands[0], found.hand_present[0]))
        else:
            self.window.add(t, frame)

    def predict(self) -> dict | None:
        """The window's probabilities (None until it spans enough time), with the newest frame's time."""
        if not self.window.ready:
            return None
        started = time.perf_counter()
        newest, items = self.window.newest(), self.window.values()
        try:
            values = self._pose(items) if self.pose else self._video(items)
        except ClipError as err:
            return {"frame_time": newest, "label": None, "detail": err.reason, "model_ms": 0.0}
        from ..results import UNSURE_MARGIN, margin

        top = max(values, key=values.get)
        gap = margin(values)
        seen = self._seen if self.pose else None  # the pose model: frames of its grid with a body and with hands
        thin = False
        if seen is not None:
            from ..pose.features import thin_evidence

            thin = thin_evidence(seen, self.predictor.pipeline.settings.min_person_frames)
        return {"frame_time": newest, "label": top, "probabilities": values, "margin": gap, "unsure": bool(gap < UNSURE_MARGIN or thin),
                "seen": seen, "frames": len(items), "model_ms": round(1000 * (time.perf_counter() - started), 1)}

    def _video(self, frames: list[np.ndarray]) -> dict[str, float]:
        shape = frames[-1].shape
        frames = [f for f in frames if f.shape == shape]  # a camera that changed size mid-window: its newest frames
        return dict(self.predictor.predict(np.stack(frames)).probabilities)

    def _pose(self, items: list) -> dict[str, float]:
        from ..pose.features import pose_sequence
        from ..pose.landmarks import Landmarks, grid_indices

        settings = self.predictor.pipeline.settings
        times = np.array([t for t, _ in self.window.items], np.float64)
        pick = grid_indices(len(items), settings.frames)
        chosen = [items[i] for i in pick]
        height, width = chosen[-1][4][:2]
        landmarks = Landmarks(np.stack([c[0] for c in chosen]), np.stack([c[1] for c in chosen]),
                              np.stack([c[2] for c in chosen]), np.array([c[3] for c in chosen], bool),
                              times[pick] - times[0], int(width), int(height), None,
                              np.stack([c[5] for c in chosen]), np.stack([c[6] for c in chosen]))
        self._seen = landmarks.seen()
        proba = self.predictor.pipeline.model.predict_proba([pose_sequence(landmarks)])[0]
        return {c: float(p) for c, p in zip(self.predictor.classes, proba)}
