"""Pose and hand landmarks of a clip: MediaPipe Pose and Hands on a grid of frames spread evenly over it, cached on disk.

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

Hands (MediaPipe Hands, the lite model, on the frames of the grid where hands can be found:
`hands_worth_finding`):
``hands`` float32 (T, 2, 21, 3) x, y in [0, 1] of the frame and MediaPipe's
relative depth, slot 0 the person's left hand, slot 1 their right; NaN where
that hand is not found; ``hand_present`` bool (T, 2). MediaPipe labels
handedness as if the image were mirrored (a selfie camera), so its "Right" is
the person's left in an ordinary video; two hands with the same label keep
the more confident in its slot and put the other in the free one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
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

FORMAT_VERSION = 2
"""Bump when the landmarks stored for the same clip and settings would change (2: hands added)."""

MODEL_COMPLEXITY = 1
"""The only MediaPipe Pose model shipped in the mediapipe wheel (0 and 2 are downloaded on first use)."""

HAND_COMPLEXITY = 0
"""MediaPipe Hands' lite model; the wheel ships both (0: palm_detection_lite + hand_landmark_lite,
1: the full ones), so neither downloads. The lite one found as many hands on the shared close-ups at
about half the time (docs/pose.md)."""

NUM_HAND_POINTS = 21

HAND_MIN_PX = 10.0
"""Hands are looked for on a frame unless a body was found there whose hands are both smaller than this
(wrist to index finger, in pixels of the decoded frame): the palm detector does not find hands that small.
On real-dev's whole-body clips (decoded at 360 px) it found a hand in 1 of 167 such frames and in 23 of
131 others, so skipping them saves the hand model's time (0.4x the body's) on most whole-body frames."""

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
    hands: np.ndarray | None = None
    """float32 (T, 2, 21, 3), NaN where a hand is not found (None: no hand was looked for; read as none found)."""
    hand_present: np.ndarray | None = None
    """bool (T, 2): slot 0 the person's left hand, 1 their right."""

    def __post_init__(self):
        t = len(self.present)
        assert self.image.shape == (t, NUM_JOINTS, 3) and self.world.shape == (t, NUM_JOINTS, 3)
        assert self.visibility.shape == (t, NUM_JOINTS) and self.times.shape == (t,)
        if self.hands is None:
            object.__setattr__(self, "hands", np.full((t, 2, NUM_HAND_POINTS, 3), np.nan, np.float32))
        if self.hand_present is None:
            object.__setattr__(self, "hand_present", np.isfinite(self.hands).all(axis=(2, 3)))
        assert self.hands.shape == (t, 2, NUM_HAND_POINTS, 3) and self.hand_present.shape == (t, 2)

    def seen(self) -> dict[str, int]:
        """How many of the frames had a body, a hand (either), and how many frames there were."""
        return {"frames": self.num_frames, "body": int(self.present.sum()), "hands": int(self.hand_present.any(axis=1).sum())}

    @property
    def num_frames(self) -> int:
        return len(self.present)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything but the path, as arrays (what a cache entry stores)."""
        return {
            "image": self.image, "world": self.world, "visibility": self.visibility,
            "present": self.present, "times": self.times,
            "size": np.array([self.width, self.height], dtype=np.int64),
            "hands": self.hands, "hand_present": self.hand_present,
        }

    @classmethod
    def from_arrays(cls, arrays, path: Path | None = None) -> "Landmarks":
        """Inverse of `arrays` (raises KeyError/ValueError/AssertionError on a malformed entry)."""
        width, height = (int(v) for v in arrays["size"])
        return cls(
            np.asarray(arrays["image"], np.float32), np.asarray(arrays["world"], np.float32),
            np.asarray(arrays["visibility"], np.float32), np.asarray(arrays["present"], bool),
            np.asarray(arrays["times"], np.float64), width, height, path,
            np.asarray(arrays["hands"], np.float32), np.asarray(arrays["hand_present"], bool),
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
_hand_graph = None
_BLANK = np.zeros((64, 64, 3), np.uint8)
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
        with quiet_stderr():
            _graph = mp.solutions.pose.Pose(
                static_image_mode=True, model_complexity=MODEL_COMPLEXITY,
                enable_segmentation=False, min_detection_confidence=0.5,
            )
            _graph.process(_BLANK)  # TensorFlow Lite logs while its models start, on the first frame
    return _graph


def _hands_graph():
    """The process's one MediaPipe Hands graph (two hands, each frame on its own)."""
    global _hand_graph
    if _hand_graph is None:
        mp = require_mediapipe()
        with quiet_stderr():
            _hand_graph = mp.solutions.hands.Hands(
                static_image_mode=True, max_num_hands=2, model_complexity=HAND_COMPLEXITY, min_detection_confidence=0.5,
            )
            _hand_graph.process(_BLANK)
    return _hand_graph


def hands_worth_finding(image: np.ndarray, present: np.ndarray, width: int, height: int) -> np.ndarray:
    """bool (T,): frames to look for hands on, from the body found (`image`, `present`) on frames of `width` x `height`:
    every frame without a body, and those whose body's larger hand is at least `HAND_MIN_PX` long."""
    from .skeleton import J

    px = image[..., :2] * np.array([width, height], np.float32)
    size = np.stack([np.linalg.norm(px[:, J[f"{s}_wrist"]] - px[:, J[f"{s}_index"]], axis=-1) for s in ("left", "right")], 1).max(1)
    return ~present | ~(np.nan_to_num(size, nan=np.inf) < HAND_MIN_PX)


def detect_hands(frames: np.ndarray, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe Hands on each frame of ``uint8 (T, H, W, 3)`` RGB (those where `only` is True, if given)
    -> (hands, hand_present) in the module's layouts."""
    t = len(frames)
    hands = np.full((t, 2, NUM_HAND_POINTS, 3), np.nan, np.float32)
    scores = np.full((t, 2), -1.0)
    with _graph_lock, quiet_stderr():
        graph = _hands_graph()
        for i, frame in enumerate(frames):
            if only is not None and not only[i]:
                continue
            result = graph.process(np.ascontiguousarray(frame))
            found = sorted(zip(result.multi_hand_landmarks or [], result.multi_handedness or []),
                           key=lambda lh: -lh[1].classification[0].score)
            for marks, handed in found:
                label = handed.classification[0]
                slot = 0 if label.label == "Right" else 1  # MediaPipe assumes a mirrored image: its Right is the person's left
                if scores[i, slot] >= 0:
                    slot = 1 - slot
                    if scores[i, slot] >= 0:
                        continue
                scores[i, slot] = label.score
                hands[i, slot] = [(p.x, p.y, p.z) for p in marks.landmark]
    return hands, scores >= 0


_NATIVE_LOG = re.compile(rb"^(?:[WIEF]\d{4} \S+\s+\d+ \S+:\d+\]|INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog)")
"""Lines MediaPipe (glog: ``W0000 00:00:... file.cc:114] ...``) and TensorFlow Lite write to stderr by themselves."""


@contextlib.contextmanager
def quiet_stderr():
    """Keep MediaPipe's and TensorFlow Lite's own log lines ("W0000 ... Feedback manager requires a model with a
    single signature", "Using NORM_RECT without IMAGE_DIMENSIONS", "Created TensorFlow Lite XNNPACK delegate")
    from users, who cannot act on them; anything else written meanwhile is passed on afterwards.

    They are written by C++ straight to file descriptor 2, while a graph starts and on later frames too
    (GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL do not stop them: measured), so descriptor 2 points at a
    temporary file meanwhile (a file, not a pipe: a full pipe would block the writer), whose other lines
    are copied to the real stderr after.
    """
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded interpreters): nothing to filter
        yield
        return
    caught = tempfile.TemporaryFile()
    try:
        os.dup2(caught.fileno(), 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        caught.seek(0)
        kept = [line for line in caught.read().splitlines(keepends=True) if not _NATIVE_LOG.match(line)]
        caught.close()
        if kept:
            os.write(2, b"".join(kept))


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
    with _graph_lock, quiet_stderr():
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


def extract_landmarks(path: str | Path, num_frames: int = 16, decode_size: int | None = 360, hands: bool = True) -> Landmarks:
    """Landmarks of `num_frames` frames spread evenly over a clip, decoded with the short side at `decode_size`.

    The decode size never upscales a smaller clip (upscaling adds no detail);
    None decodes at full size. `hands` also runs MediaPipe Hands on every
    frame. Raises `ClipError` for an unreadable clip and `SnapActionError`
    when mediapipe is missing; a clip with nobody in view is not an error
    (its frames say so: ``present`` and ``hand_present`` all False).
    """
    path = Path(path)
    info = probe(path)  # refuses a clip of one frame, as everywhere
    return landmarks_at(path, grid_indices(info.num_frames, num_frames), decode_size, info, hands)


def landmarks_at(path: str | Path, indices: np.ndarray, decode_size: int | None = 360, info=None, hands: bool = True) -> Landmarks:
    """Landmarks of frames `indices` of a clip (a window of a long video, or the grid of `extract_landmarks`)."""
    path = Path(path)
    info = info or probe(path)
    indices = np.asarray(indices, np.int64)
    size = decode_size if decode_size and decode_size < min(info.width, info.height) else None
    frames = read_frames(path, indices, size=size, info=info)
    return frames_landmarks(frames, indices / info.fps if info.fps > 0 else np.zeros(len(indices)), info.width, info.height, path, hands)


def frames_landmarks(frames: np.ndarray, times, width: int, height: int, path: Path | None = None, hands: bool = True) -> Landmarks:
    """`Landmarks` of decoded RGB frames (body, and hands when `hands`)."""
    image, world, visibility, present = detect(frames)
    hand_points, hand_present = None, None
    if hands:
        worth = hands_worth_finding(image, present, frames.shape[2], frames.shape[1]) if len(frames) else None
        hand_points, hand_present = detect_hands(frames, worth)
    return Landmarks(image, world, visibility, present, np.asarray(times, np.float64), width, height, path, hand_points, hand_present)


class LandmarkCache:
    """Landmarks of clips kept on disk under `folder`, so reruns decode nothing.

    An entry's key is the clip's content hash plus `num_frames`, `decode_size`,
    `MODEL_COMPLEXITY`, whether and with which model and rule hands were found
    (`HAND_COMPLEXITY`, `HAND_MIN_PX`) and `FORMAT_VERSION` (a renamed clip still hits, an
    edited one misses). Entries are ``.npz`` files written to a temporary file
    and moved into place with `os.replace`; an entry that cannot be read back
    is computed again.
    """

    def __init__(self, folder: str | Path, num_frames: int = 16, decode_size: int | None = 360, hands: bool = True):
        self.folder = Path(folder)
        self.num_frames = num_frames
        self.decode_size = decode_size
        self.hands = hands
        self.folder.mkdir(parents=True, exist_ok=True)

    def entry(self, path: str | Path) -> Path:
        """Where the entry of this clip lives (it may not exist yet)."""
        setting = f"{content_hash(path)}-{self.num_frames}-{self.decode_size or 0}-c{MODEL_COMPLEXITY}-h{f'{HAND_COMPLEXITY}g{HAND_MIN_PX:g}' if self.hands else 'none'}-v{FORMAT_VERSION}"
        key = hashlib.sha256(setting.encode()).hexdigest()[:32]
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, path: str | Path) -> Landmarks:
        """Landmarks of a clip: read from its entry, or extracted once and stored. Raises `ClipError` for an unreadable clip."""
        path = Path(path)
        entry = self.entry(path)
        landmarks = self._read(entry, path)
        if landmarks is None:
            landmarks = extract_landmarks(path, self.num_frames, self.decode_size, self.hands)
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
