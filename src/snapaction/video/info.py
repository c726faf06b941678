"""What every reader shares: the facts of a clip (`VideoInfo`), file extensions, limits, and size rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
