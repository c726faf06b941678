"""What every reader shares: the facts of a clip (`VideoInfo`), file extensions, limits, and size rules."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ClipError, ConfigError

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

MIN_FRAMES = 2
"""Fewest frames a clip may hold: one frame is a still image, with no motion to learn or to recognise."""

MAX_PIXELS = 7680 * 4320
"""Largest frame read, in pixels (8K UHD); ``SNAPACTION_MAX_PIXELS`` raises or lowers it."""

MAX_FRAMES = 1_000_000
"""Most frames a clip may declare (over 9 hours at 30 fps); ``SNAPACTION_MAX_FRAMES`` raises or lowers it."""


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


def limit(name: str) -> int:
    """The limit `name` ("MAX_PIXELS" or "MAX_FRAMES"): the ``SNAPACTION_<name>`` environment variable, else the default."""
    default = {"MAX_PIXELS": MAX_PIXELS, "MAX_FRAMES": MAX_FRAMES}[name]
    text = os.environ.get(f"SNAPACTION_{name}", "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"SNAPACTION_{name}={text!r} is not a whole number above 0; set it to one (the default is {default}) or unset it.")
    return value


def check_pixels(path: Path, width: int, height: int, what: str) -> None:
    """`ClipError` before any decoding when frames of `width` x `height` pass the pixel limit (`what`: who says so)."""
    most = limit("MAX_PIXELS")
    if width * height > most:
        raise ClipError(
            path,
            f"{what} {width}x{height} ({width * height / 1e6:.0f} megapixels), above the limit of "
            f"{most / 1e6:.1f} megapixels; if the clip is real, raise the limit with SNAPACTION_MAX_PIXELS={width * height}",
        )


def check_frames(path: Path, num_frames: int) -> None:
    """`ClipError` when a clip holds fewer than `MIN_FRAMES` frames or more than the frame limit."""
    if num_frames < MIN_FRAMES:
        raise ClipError(path, f"it holds {num_frames} frame{'s' if num_frames != 1 else ''}, a still image rather than a clip; "
                              f"an action needs at least {MIN_FRAMES} frames")
    most = limit("MAX_FRAMES")
    if num_frames > most:
        raise ClipError(path, f"it declares {num_frames} frames, above the limit of {most}; cut it into shorter clips, "
                              f"or raise the limit with SNAPACTION_MAX_FRAMES={num_frames}")


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
