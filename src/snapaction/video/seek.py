"""Fast seeking for long clips (``--seek fast``): the keyframe nearest each wanted frame, decoded alone.

Exact reading (`snapaction.video.read_frames`) decodes from the keyframe before a
wanted frame up to it: on a long clip with keyframes 10 s apart that is up to
250 frames decoded per frame kept. Where the wanted frames lie further apart
than the keyframes do (16 frames spread over minutes of video), the keyframe
nearest each one stands in for it: one seek and one decoded frame each, at most
half a keyframe interval away in time. Where they lie closer (short clips,
dense sampling) two frames would share a keyframe, so the exact reader is used
instead and the frames are the exact ones. Opt-in: the frames differ from the
ones training saw.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path

import numpy as np

from ..errors import ClipError
from .info import VideoInfo, scaled_size
from .pyav import _Converter, _keyframe_timestamps, _read_video, _stored_size, read_file

log = logging.getLogger(__name__)


def keyframe_picks(keyframes: list[int], targets: list[float], time_base: float) -> list[int] | None:
    """The nearest keyframe (index timestamp) for each target (seconds, sorted), or None when two targets would share one
    or there is no usable index: then only exact decoding gives distinct frames."""
    if len(keyframes) < 2:
        return None
    seconds = [k * time_base for k in keyframes]
    picks = []
    for t in targets:
        j = bisect.bisect_left(seconds, t)
        near = min((i for i in (j - 1, j) if 0 <= i < len(seconds)), key=lambda i: abs(seconds[i] - t))
        picks.append(keyframes[near])
    return picks if len(set(picks)) == len(picks) else None


def read_file_fast(path: Path, indices: np.ndarray, size: int | None, info: VideoInfo | None, timeout: float) -> np.ndarray:
    """`snapaction.video.read_frames_fast` for a video file."""
    return read_file(path, indices, size, info, timeout, reader=_read_fast)


def _read_fast(path: Path, container, indices: np.ndarray, size: int | None, info: VideoInfo, deadline) -> np.ndarray:
    stream = container.streams.video[0]
    tb = float(stream.time_base)
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    order = np.unique(indices)
    picks = keyframe_picks(_keyframe_timestamps(stream), (start + order / info.fps).tolist(), tb)
    if picks is None:
        log.debug("%s: wanted frames closer than its keyframes; reading them exactly", path)
        return _read_video(path, container, indices, size, info, deadline)
    convert = _Converter(*scaled_size(*_stored_size(info), size), info.rotation)
    frames = [_first_frame_at(path, container, stream, pts, deadline) for pts in picks]  # alive until converted: the converter knows frames by id
    arrays = {int(i): convert(f) for i, f in zip(order, frames)}
    return np.stack([arrays[int(i)] for i in indices])


def _first_frame_at(path: Path, container, stream, pts: int, deadline):
    """The first frame that decodes after seeking to the keyframe at `pts` (stream time base)."""
    import av

    container.seek(pts, stream=stream, backward=True)
    for packet in container.demux(stream):
        deadline.check()
        try:
            frame = next(iter(stream.decode(packet)), None)
        except av.InvalidDataError:
            continue
        if frame is not None:
            return frame
    raise ClipError(path, f"no frame decodes after the keyframe at {pts * float(stream.time_base):.2f} s; read it with --seek exact")
