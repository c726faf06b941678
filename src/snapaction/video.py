"""Reading frames: one entry point, two backends (video files through PyAV, frame folders through Pillow).

Layout convention for the whole package: a decoded clip is ``uint8 (T, H, W, C)``
with RGB channels; the model side turns it into ``float32 (T, C, H, W)``.

Only the frames that are asked for are decoded: decoding stops after the last
one, and long gaps between wanted frames are crossed with a seek to the
keyframe before the next one. Frames are picked by timestamp, so clips with a
variable frame rate are sampled evenly in time. Rotation metadata is honoured.
"""

from __future__ import annotations

import re
import time
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
"""Seek instead of decoding forward when the next wanted frame is further away than this."""


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


def probe(path: str | Path) -> VideoInfo:
    """Frame count, rate, duration and display size of a clip, without decoding pixels.

    Raises `ClipError` naming the file when it is not a readable clip.
    """
    path = Path(path)
    if path.is_dir():
        return _probe_folder(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        duration = _duration(container, stream)
        rotation = _first_frame_rotation(path, container, stream)
        num_frames = stream.frames
        if num_frames <= 0:
            num_frames = sum(1 for packet in container.demux(stream) if packet.size)
        if num_frames <= 0:
            raise ClipError(path, "the video stream holds no frames; re-export the clip")
        if duration <= 0:
            duration = num_frames / fps
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(path, int(num_frames), num_frames / duration, duration, width, height, rotation)


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
    unsorted indices are allowed. With `size`, the shorter side is scaled to
    `size` pixels (aspect ratio kept) while decoding. Raises `ClipError`
    naming the file for anything unreadable or slower than `timeout` seconds.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or len(indices) == 0:
        raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {indices.shape}")
    if path.is_dir():
        return _read_folder(path, indices, size)
    info = info or probe(path)
    return _read_video(path, indices, size, info, timeout)


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to `short_side`, aspect kept."""
    if not short_side:
        return width, height
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


# --- video files -------------------------------------------------------------


def _open(path: Path):
    import av

    if not path.exists():
        raise ClipError(path, "no such file")
    if path.stat().st_size == 0:
        raise ClipError(path, "the file is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as err:
        raise ClipError(path, f"not a readable video ({_ffmpeg_reason(err)})") from None
    if not container.streams.video:
        container.close()
        raise ClipError(path, "the file has no video stream")
    return container


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _first_frame_rotation(path: Path, container, stream) -> int:
    """Display rotation from the first frame's display matrix; also proves the clip decodes."""
    import av

    try:
        frame = next(container.decode(stream), None)
    except av.FFmpegError as err:
        raise ClipError(path, f"the first frame does not decode ({_ffmpeg_reason(err)})") from None
    if frame is None:
        raise ClipError(path, "no frame could be decoded")
    container.seek(0)
    return int(round(frame.rotation or 0)) % 360 // 90 * 90


def _ffmpeg_reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def _read_video(path: Path, indices: np.ndarray, size: int | None, info: VideoInfo, timeout: float) -> np.ndarray:
    import av

    order = np.unique(indices)
    # Frame i is the one on screen at start + i / fps; half a frame of slack
    # absorbs rounding in container timestamps.
    targets = order / info.fps
    slack = 0.5 / info.fps
    picked: dict[int, object] = {}
    deadline = time.monotonic() + timeout
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        tb = stream.time_base
        k = 0  # next target to fill
        prev = None
        need_seek = targets[0] > SEEK_GAP_S
        try:
            while k < len(targets):
                if need_seek:
                    container.seek(int((start + targets[k]) / tb), stream=stream, backward=True)
                    prev, need_seek = None, False
                for frame in container.decode(stream):
                    if time.monotonic() > deadline:
                        raise ClipError(path, f"decoding took longer than {timeout:.0f} s; the file may be damaged")
                    t = (frame.time if frame.time is not None else 0.0) - start
                    while k < len(targets) and t > targets[k] + slack:
                        picked[int(order[k])] = prev if prev is not None else frame
                        k += 1
                    if k == len(targets):
                        break
                    prev = frame
                    if targets[k] - t > SEEK_GAP_S:
                        need_seek = True
                        break
                else:  # end of stream: remaining frames are the last one shown
                    if prev is None:
                        raise ClipError(path, "no frame could be decoded")
                    for j in range(k, len(targets)):
                        picked[int(order[j])] = prev
                    k = len(targets)
        except av.FFmpegError as err:
            if prev is None or not picked and k == 0:
                raise ClipError(path, f"decoding failed ({_ffmpeg_reason(err)})") from None
            for j in range(k, len(targets)):  # a damaged tail: keep what decoded
                picked[int(order[j])] = prev
        out_w, out_h = scaled_size(*_stored_size(info), size)
        arrays = {i: _to_rgb(f, out_w, out_h, info.rotation) for i, f in picked.items()}
    return np.stack([arrays[int(i)] for i in indices])


def _stored_size(info: VideoInfo) -> tuple[int, int]:
    if info.rotation in (90, 270):
        return info.height, info.width
    return info.width, info.height


def _to_rgb(frame, width: int, height: int, rotation: int) -> np.ndarray:
    if (frame.width, frame.height) == (width, height):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


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
    if indices.max() >= len(files) or indices.min() < 0:
        raise ValueError(f"index out of range for {path} with {len(files)} frames: {indices.tolist()}")
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
