"""Pose landmarks of a clip: MediaPipe Pose on a grid of frames spread evenly over it, cached on disk.

One person: the legacy MediaPipe Pose graph returns the landmarks of one
person per frame, the most prominent one its detector finds (usually the
largest, nearest the centre); in a clip with several people the landmarks may
belong to different people in different frames.

Frames are estimated independently (``static_image_mode=True``): the grid's
frames are far apart in time (16 frames over a clip of several seconds), and
tracking mode, which crops the next frame around the last pose, then follows
the wrong person or a wrong region (measured on the shared real clips, see
docs/pose.md) without being faster. Independent frames also make a frame's
landmarks depend on that frame alone, so caching and tests are exact.

Layouts (``T`` frames of the grid, 33 joints in `skeleton.NAMES` order):
``image`` float32 (T, 33, 3): x, y in [0, 1] of the frame's width and height
(may fall slightly outside for joints out of the frame), z depth in about the
units of x, smaller = nearer the camera, origin at the hips;
``world`` float32 (T, 33, 3) metres, origin between the hips;
``visibility`` float32 (T, 33) in [0, 1]; ``present`` bool (T,). Frames with
no person hold NaN in ``image`` and ``world`` and 0 in ``visibility``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data.cache import content_hash
from ..errors import SnapActionError
from ..video import probe, read_frames

from .skeleton import NUM_JOINTS

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the landmarks stored for the same clip and settings would change."""

MODEL_COMPLEXITY = 1
"""The only MediaPipe Pose model shipped in the mediapipe wheel (0 and 2 are downloaded on first use)."""

INSTALL_HINT = 'pip install "snapaction[pose]"'


@dataclass(frozen=True)
class Landmarks:
    """Pose landmarks of the frames of one clip (layouts: module docstring)."""

    image: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    present: np.ndarray
    times: np.ndarray
    """float64 (T,) seconds from the start of the clip."""
    width: int
    height: int
    """Size of the clip's frames as displayed (before any decode scaling)."""
    path: Path | None = None
    """The clip they came from (for error messages); not part of the stored entry."""

    def __post_init__(self):
        t = len(self.present)
        assert self.image.shape == (t, NUM_JOINTS, 3) and self.world.shape == (t, NUM_JOINTS, 3)
        assert self.visibility.shape == (t, NUM_JOINTS) and self.times.shape == (t,)

    @property
    def num_frames(self) -> int:
        return len(self.present)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything but the path, as arrays (what a cache entry stores)."""
        return {
            "image": self.image, "world": self.world, "visibility": self.visibility,
            "present": self.present, "times": self.times,
            "size": np.array([self.width, self.height], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays, path: Path | None = None) -> "Landmarks":
        """Inverse of `arrays` (raises KeyError/ValueError/AssertionError on a malformed entry)."""
        width, height = (int(v) for v in arrays["size"])
        return cls(
            np.asarray(arrays["image"], np.float32), np.asarray(arrays["world"], np.float32),
            np.asarray(arrays["visibility"], np.float32), np.asarray(arrays["present"], bool),
            np.asarray(arrays["times"], np.float64), width, height, path,
        )


def landmark_dir(cache_dir: str | Path) -> Path:
    """Where landmarks are cached under SnapAction's cache folder: training and prediction share it."""
    return Path(cache_dir) / "landmarks"


def grid_indices(length: int, n: int) -> np.ndarray:
    """int64 (n,) frame indices, the middle of each of `n` equal segments of a clip of `length` frames."""
    if length < 1:
        raise ValueError(f"a clip needs at least one frame, got length {length}")
    pos = (np.arange(n) + 0.5) * (length / n)
    return np.clip(np.floor(pos), 0, length - 1).astype(np.int64)


_graph = None
_graph_lock = threading.Lock()


def require_mediapipe():
    """The mediapipe module; `SnapActionError` with the install command when the pose extra is not installed."""
    import importlib.util

    if importlib.util.find_spec("mediapipe") is None:
        raise SnapActionError(f"the pose model needs mediapipe, which is not installed; install it with: {INSTALL_HINT}")
    import mediapipe

    return mediapipe


def _pose_graph():
    """The process's one MediaPipe Pose graph (made on first use; building one costs time)."""
    global _graph
    if _graph is None:
        mp = require_mediapipe()
        _graph = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=MODEL_COMPLEXITY,
            enable_segmentation=False, min_detection_confidence=0.5,
        )
    return _graph


def detect(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe Pose on each frame of ``uint8 (T, H, W, 3)`` RGB.

    Returns (image, world, visibility, present) in the module's layouts.
    Thread-safe (one graph, used under a lock).
    """
    t = len(frames)
    image = np.full((t, NUM_JOINTS, 3), np.nan, np.float32)
    world = np.full((t, NUM_JOINTS, 3), np.nan, np.float32)
    visibility = np.zeros((t, NUM_JOINTS), np.float32)
    present = np.zeros(t, bool)
    with _graph_lock:
        graph = _pose_graph()
        for i, frame in enumerate(frames):
            result = graph.process(np.ascontiguousarray(frame))
            if result.pose_landmarks is None:
                continue
            present[i] = True
            image[i] = [(p.x, p.y, p.z) for p in result.pose_landmarks.landmark]
            visibility[i] = [p.visibility for p in result.pose_landmarks.landmark]
            if result.pose_world_landmarks is not None:
                world[i] = [(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark]
    return image, world, visibility, present


def extract_landmarks(path: str | Path, num_frames: int = 16, decode_size: int | None = 360) -> Landmarks:
    """Landmarks of `num_frames` frames spread evenly over a clip, decoded with the short side at `decode_size`.

    The decode size never upscales a smaller clip (upscaling adds no detail);
    None decodes at full size. Raises `ClipError` for an unreadable clip and
    `SnapActionError` when mediapipe is missing.
    """
    path = Path(path)
    info = probe(path)  # refuses a clip of one frame, as everywhere
    return landmarks_at(path, grid_indices(info.num_frames, num_frames), decode_size, info)


def landmarks_at(path: str | Path, indices: np.ndarray, decode_size: int | None = 360, info=None) -> Landmarks:
    """Landmarks of frames `indices` of a clip (a window of a long video, or the grid of `extract_landmarks`)."""
    path = Path(path)
    info = info or probe(path)
    indices = np.asarray(indices, np.int64)
    size = decode_size if decode_size and decode_size < min(info.width, info.height) else None
    frames = read_frames(path, indices, size=size, info=info)
    image, world, visibility, present = detect(frames)
    times = indices / info.fps if info.fps > 0 else np.zeros(len(indices))
    return Landmarks(image, world, visibility, present, times.astype(np.float64), info.width, info.height, path)


class LandmarkCache:
    """Landmarks of clips kept on disk under `folder`, so reruns decode nothing.

    An entry's key is the clip's content hash plus `num_frames`, `decode_size`,
    `MODEL_COMPLEXITY` and `FORMAT_VERSION` (a renamed clip still hits, an
    edited one misses). Entries are ``.npz`` files written to a temporary file
    and moved into place with `os.replace`; an entry that cannot be read back
    is computed again.
    """

    def __init__(self, folder: str | Path, num_frames: int = 16, decode_size: int | None = 360):
        self.folder = Path(folder)
        self.num_frames = num_frames
        self.decode_size = decode_size
        self.folder.mkdir(parents=True, exist_ok=True)

    def entry(self, path: str | Path) -> Path:
        """Where the entry of this clip lives (it may not exist yet)."""
        setting = f"{content_hash(path)}-{self.num_frames}-{self.decode_size or 0}-c{MODEL_COMPLEXITY}-v{FORMAT_VERSION}"
        key = hashlib.sha256(setting.encode()).hexdigest()[:32]
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, path: str | Path) -> Landmarks:
        """Landmarks of a clip: read from its entry, or extracted once and stored. Raises `ClipError` for an unreadable clip."""
        path = Path(path)
        entry = self.entry(path)
        landmarks = self._read(entry, path)
        if landmarks is None:
            landmarks = extract_landmarks(path, self.num_frames, self.decode_size)
            self._write(entry, landmarks)
        return landmarks

    def _read(self, entry: Path, path: Path) -> Landmarks | None:
        try:
            with np.load(entry, allow_pickle=False) as data:
                landmarks = Landmarks.from_arrays(data, path)
        except FileNotFoundError:
            return None
        except Exception as err:  # any damage to the file: zip, header, missing or misshapen array
            log.warning("landmark cache entry %s is unreadable (%r); extracting the clip again", entry, err)
            return None
        if landmarks.num_frames != self.num_frames:
            log.warning("landmark cache entry %s holds %d frames, not %d; extracting again", entry, landmarks.num_frames, self.num_frames)
            return None
        return replace(landmarks, path=path)

    def _write(self, entry: Path, landmarks: Landmarks) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **landmarks.arrays())
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
