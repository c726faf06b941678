"""Reading frames: one entry point, two backends (video files through PyAV, frame folders through Pillow).

Layout convention for the whole package: a decoded clip is ``uint8 (T, H, W, C)``
with RGB channels; the model side turns it into ``float32 (T, C, H, W)``.

Only the frames that are asked for are decoded, and the frames returned are
exactly those a full decode would give (how: see `snapaction.decode`).

Frames are picked by timestamp (frame ``i`` is the one on screen at
``i / fps`` after the start), so clips with a variable frame rate are sampled
evenly in time. Rotation metadata is honoured. Every problem with a file,
including taking longer than `DECODE_TIMEOUT_S`, raises `ClipError` naming
the file, so batch callers can report the clip and go on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ClipError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

DECODE_TIMEOUT_S = 60.0
"""Longest time one clip may take to decode before it is reported as broken."""

SEEK_GAP_S = 2.0
"""Without a keyframe index, seek instead of decoding forward when the next wanted frame is further away than this."""

SKIP_MARGIN_FRAMES = 1.0
"""Non-reference frames are skipped until the next wanted frame is this many frames away."""

MAX_BAD_PACKETS = 16
"""Damaged packets tolerated in one clip before it is reported as broken."""


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, read from its container without decoding pixels."""

    path: Path
    num_frames: int
    fps: float
    duration: float
    """Seconds."""
    width: int
    height: int
    """Size as displayed, after rotation."""
    rotation: int = 0
    """Degrees the stored frames are turned counter-clockwise for display (0, 90, 180, 270)."""


def natural_key(name: str) -> list:
    """Sort key that orders 'frame2' before 'frame10'."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def frame_files(folder: str | Path) -> list[Path]:
    """Image files of a frame folder, in natural sort order."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def is_clip(path: str | Path) -> bool:
    """True for a video file or a folder holding image frames."""
    path = Path(path)
    if path.is_dir():
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())
    return path.suffix.lower() in VIDEO_EXTENSIONS


def probe(path: str | Path, timeout: float = DECODE_TIMEOUT_S) -> VideoInfo:
    """Frame count, rate, duration and display size of a clip; decodes only its first frame.

    Raises `ClipError` naming the file when it is not a readable clip.
    """
    path = Path(path)
    if path.is_dir():
        return _probe_folder(path)
    from .decode import probe_file

    return probe_file(path, timeout)


def read_frames(
    path: str | Path,
    indices: Sequence[int] | np.ndarray,
    size: int | None = None,
    info: VideoInfo | None = None,
    timeout: float = DECODE_TIMEOUT_S,
) -> np.ndarray:
    """Frames `indices` of a clip as ``uint8 (T, H, W, C)`` RGB.

    Indices count frames from 0 in display order; for a video file frame ``i``
    is the frame shown at time ``i / fps`` after the start. Repeated and
    unsorted indices are allowed; an index outside ``[0, num_frames)`` is a
    `ValueError`. With `size`, the shorter side is scaled to `size` pixels
    (aspect ratio kept, see `scaled_size`) while decoding. Raises `ClipError`
    naming the file for anything unreadable or slower than `timeout` seconds.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or len(indices) == 0:
        raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {indices.shape}")
    if path.is_dir():
        return _read_folder(path, indices, size)
    from .decode import read_file

    return read_file(path, indices, size, info, timeout)


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to `short_side`, aspect kept.

    The longer side is rounded down, as transformers' image processors and
    torchvision's ``Resize`` do, so frames scaled here need no second resize.
    """
    if not short_side:
        return width, height
    if width <= height:
        return short_side, max(1, int(height * short_side / width))
    return max(1, int(width * short_side / height)), short_side


def check_range(path: Path, indices: np.ndarray, num_frames: int) -> None:
    """Raise `ValueError` naming the clip when an index falls outside ``[0, num_frames)``."""
    if indices.min() < 0 or indices.max() >= num_frames:
        raise ValueError(f"index out of range for {path} with {num_frames} frames: {indices.tolist()}")


# --- frame folders -----------------------------------------------------------


def _probe_folder(path: Path) -> VideoInfo:
    files = frame_files(path)
    if not files:
        raise ClipError(path, f"the folder has no image frames ({', '.join(IMAGE_EXTENSIONS)})")
    width, height = _open_image(files[0]).size
    fps = 25.0  # frame folders carry no rate; 25 is the convention of the datasets that use them
    return VideoInfo(path, len(files), fps, len(files) / fps, width, height, 0)


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as err:
        raise ClipError(path, f"not a readable image ({err})") from None
    return image


def _read_folder(path: Path, indices: np.ndarray, size: int | None) -> np.ndarray:
    from PIL import Image

    files = frame_files(path)
    if not files:
        raise ClipError(path, "the folder has no image frames")
    check_range(path, indices, len(files))
    cache: dict[int, np.ndarray] = {}
    for i in np.unique(indices):
        image = _open_image(files[i]).convert("RGB")
        if size:
            w, h = scaled_size(*image.size, size)
            if (w, h) != image.size:
                image = image.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=None)
        cache[int(i)] = np.asarray(image)
    shapes = {a.shape for a in cache.values()}
    if len(shapes) > 1:
        raise ClipError(path, f"frames differ in size ({sorted(shapes)}); resize them to one size")
    return np.stack([cache[int(i)] for i in indices])
