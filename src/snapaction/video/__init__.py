"""Reading frames: one entry point, two backends (video files through PyAV, frame folders through Pillow).

Layout convention for the whole package: a decoded clip is ``uint8 (T, H, W, C)``
with RGB channels; the model side turns it into ``float32 (T, C, H, W)``.

Only the frames that are asked for are decoded, and the frames returned are
exactly those a full decode would give (how: see `snapaction.video.pyav`).

Frames are picked by timestamp (frame ``i`` is the one on screen at
``i / fps`` after the start), so clips with a variable frame rate are sampled
evenly in time. Rotation metadata is honoured. Every problem with a file,
including taking longer than `DECODE_TIMEOUT_S`, raises `ClipError` naming
the file, so batch callers can report the clip and go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .folder import decode_all_images, frame_files, probe_folder, read_folder  # noqa: F401  frame_files: for readers of frame folders
from .info import (  # noqa: F401  the names readers of clips use, in one place
    DECODE_TIMEOUT_S, IMAGE_EXTENSIONS, MAX_BAD_PACKETS, MIN_FRAMES, SEEK_GAP_S, SKIP_MARGIN_FRAMES, VIDEO_EXTENSIONS,
    VideoInfo, check_range, natural_key, scaled_size,
)


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
        return probe_folder(path)
    from .pyav import probe_file

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
        return read_folder(path, indices, size)
    from .pyav import read_file

    return read_file(path, indices, size, info, timeout)


def decode_all(path: str | Path, info: VideoInfo | None = None, timeout: float = DECODE_TIMEOUT_S) -> int:
    """Decode every frame of a clip (as the data check does, to catch damage past the header); returns how many decode.

    Raises `ClipError` naming the file when it is damaged, truncated (a container
    that promises more frames than decode), or slower than `timeout` seconds.
    """
    path = Path(path)
    info = info or probe(path, timeout)
    if path.is_dir():
        return decode_all_images(path, (info.width, info.height))
    from .pyav import decode_all_file

    return decode_all_file(path, timeout)


def read_frames_fast(path: str | Path, indices, size: int | None = None, info: VideoInfo | None = None,
                     timeout: float = DECODE_TIMEOUT_S) -> np.ndarray:
    """As `read_frames`, but where the wanted frames lie further apart than the clip's keyframes, each is replaced
    by the keyframe nearest it (one decoded frame each: `snapaction.video.seek`); otherwise the exact frames."""
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    if path.is_dir() or indices.ndim != 1 or len(indices) == 0:
        return read_frames(path, indices, size, info, timeout)
    from .seek import read_file_fast

    return read_file_fast(path, indices, size, info, timeout)
