"""Decoding video files with PyAV: only the frames asked for, exactly as a full decode gives them.

The file side of `snapaction.video` (which is the entry point; frame folders
live there):

- decoding stops once the last wanted frame is out;
- a wanted frame whose keyframe lies ahead of the decoder is reached by
  seeking to that keyframe (found in the container's index; without an index,
  by time when the gap is longer than `SEEK_GAP_S`);
- frames that no other frame refers to (non-reference B-frames) are not
  decoded while the next wanted frame is still more than `SKIP_MARGIN_FRAMES`
  frames away;
- only the picked frames are converted to RGB, scaled by swscale on the way
  when a short side is asked for.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import re
import time
from pathlib import Path

import numpy as np

from ..errors import ClipError
from .info import MAX_BAD_PACKETS, SEEK_GAP_S, SKIP_MARGIN_FRAMES, VideoInfo, check_frames, check_pixels, check_range, limit, scaled_size


log = logging.getLogger(__name__)


def probe_file(path: Path, timeout: float) -> VideoInfo:
    """`snapaction.video.probe` for a video file."""
    deadline = _Deadline(path, timeout)
    with _open(path, timeout) as container, _clip_errors(path):
        return _probe_container(path, container, deadline)


def read_file(path: Path, indices: np.ndarray, size: int | None, info: VideoInfo | None, timeout: float, reader=None) -> np.ndarray:
    """`snapaction.video.read_frames` for a video file; `reader` replaces the exact `_read_video` (fast seeking)."""
    deadline = _Deadline(path, timeout)
    with _open(path, timeout) as container:
        with _clip_errors(path):
            info = info or _probe_container(path, container, deadline)
        check_range(path, indices, info.num_frames)
        with _clip_errors(path):
            return (reader or _read_video)(path, container, indices, size, info, deadline)


def decode_all_file(path: Path, timeout: float) -> int:
    """`snapaction.video.decode_all` for a video file: every frame decoded, within `timeout` seconds."""
    import av

    deadline = _Deadline(path, timeout)
    decoded = 0
    with _open(path, timeout) as container, _clip_errors(path):
        stream = container.streams.video[0]
        expected = _expected_frames(container, stream)
        try:
            for _ in container.decode(stream):
                decoded += 1
                if decoded % 32 == 0:
                    deadline.check()
        except av.ExitError:  # FFmpeg's interrupt callback fired: a read outlasted the timeout
            raise ClipError(path, f"decoding took longer than {timeout:g} s; the file may be damaged") from None
        except (av.FFmpegError, OSError) as err:
            what = getattr(err, "strerror", None) or str(err)
            raise ClipError(path, f"damaged or truncated: decoding fails after {decoded} frames ({what})") from None
    if expected and expected - decoded > max(1, 0.05 * expected):
        raise ClipError(path, f"truncated: only {decoded} of {expected} frames decode")
    return decoded


def _expected_frames(container, stream) -> int:
    """Frame count the container promises: its frame count, else its duration times its frame rate."""
    if stream.frames > 0:
        return int(stream.frames)
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif tag := _tag_seconds(stream.metadata.get("DURATION", "")):
        seconds = tag
    elif container.duration:
        seconds = container.duration / 1_000_000
    return round(seconds * rate) if seconds and rate else 0


def _tag_seconds(text: str) -> float | None:
    """Seconds from a Matroska ``DURATION`` tag such as ``00:01:02.500000000``."""
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not match:
        return None
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


class _Deadline:
    """Raises `ClipError` once a clip has taken longer than its time budget."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout = path, timeout
        self.end = time.monotonic() + timeout

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise ClipError(
                self.path,
                f"decoding took longer than {self.timeout:g} s; the file may be damaged "
                "(if it is only very long, raise the timeout)",
            )


def _open(path: Path, timeout: float):
    """An open PyAV container for `path`, set up for fast decoding of its first video stream."""
    with _clip_errors(path):
        return _open_container(path, timeout)


def _open_container(path: Path, timeout: float):
    import av

    if not path.exists():
        raise ClipError(path, "a symbolic link that loops or leads nowhere" if path.is_symlink() else "no such file")
    if not path.is_file():  # a pipe or device could block forever before any timeout applies
        raise ClipError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise ClipError(path, "the file is empty (0 bytes)")
    started = time.monotonic()
    # FFmpeg's own pixel limit, so that no decoder (the one that probes the stream while opening it
    # included) allocates frames above the limit whatever a header or an in-band SPS claims
    decoder_options = {"max_pixels": str(limit("MAX_PIXELS"))}
    container = None
    try:
        # `timeout` also bounds every read FFmpeg makes, through its interrupt callback
        container = _open_limited(path, timeout, decoder_options)
        if not container.streams.video:
            raise ClipError(path, NO_VIDEO)
        stream = container.streams.video[0]
        cc = stream.codec_context
        if cc is None:
            raise ClipError(path, f"FFmpeg has no decoder for its video codec (container {container.format.name}); "
                                  "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")
        if container.format.name in _IMAGE_FORMATS:
            raise ClipError(path, f"it is a single image ({container.format.name.removesuffix('_pipe')}), not a video; "
                                  "put the frames of a clip in a folder of images, or encode them as a video")
        check_pixels(path, cc.width, cc.height, "its header declares frames of")
        first = next((p for p in container.demux(stream) if p.size), None)  # to choose the threading
        try:
            container.seek(0)
        except av.FFmpegError:  # a stream that cannot seek: start it again
            container.close()
            container = _open_limited(path, timeout, decoder_options)
            stream = container.streams.video[0]
        stream.codec_context.options = decoder_options
    except (av.FFmpegError, OSError) as err:
        if container is not None:
            container.close()
        if isinstance(err, av.ExitError) or time.monotonic() - started >= timeout:
            raise ClipError(path, f"opening took longer than {timeout:g} s; the file may be damaged") from None
        raise ClipError(path, _unreadable(path, err)) from None
    except BaseException:
        if container is not None:
            container.close()
        raise
    # Offered both, FFmpeg prefers frame threads, which cannot split a frame; for
    # frames coded as several slices (what PyAV's own encoder writes) slice
    # threads decode a 720p clip about 1.4x faster on two cores.
    stream.thread_type = "SLICE" if first is not None and _slices(stream, bytes(first)) > 1 else "AUTO"
    return container


NO_VIDEO = "the file has no video stream"


def _open_limited(path: Path, timeout: float, decoder_options: dict):
    """`av.open` with `decoder_options` on every stream, so FFmpeg's probing decoders keep to them too."""
    import av

    try:
        return av.open(str(path), metadata_errors="ignore", timeout=timeout, stream_options=[decoder_options] * 64)
    except ValueError as err:
        if isinstance(err, av.FFmpegError):  # FFmpeg's errors are ValueErrors too (invalid data, ...)
            raise
        # PyAV's own: the container named no stream before probing, so per-stream options have nowhere to go
        raise ClipError(path, _unnamed_streams(path, timeout)) from None


def _unnamed_streams(path: Path, timeout: float) -> str:
    """Why a file whose container names no stream in its header cannot be used: it has none (an MP4 with no
    tracks), or its format (MPEG program stream, FLV) finds them by decoding, which is never done unbounded."""
    import av

    try:  # no decoder may open, so finding the streams decodes nothing
        with av.open(str(path), metadata_errors="ignore", timeout=timeout, options={"codec_whitelist": "none"}) as container:
            streams, video, name = len(container.streams), len(container.streams.video), container.format.name
    except av.ExitError:  # FFmpeg's interrupt callback fired: a read outlasted the timeout
        return f"opening took longer than {timeout:g} s; the file may be damaged"
    except (av.FFmpegError, OSError):
        return f"{NO_VIDEO} (its container names none)"
    if not video:
        return NO_VIDEO if streams else f"{NO_VIDEO} (it holds no streams at all)"
    return (f"its container ({name}) names its video stream only once it is decoded, which SnapAction does not do "
            "before checking the frame size; re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")


_HEAD = 512
"""Bytes of a file read to tell what it is when FFmpeg cannot open it."""
_MAGIC = ((4, b"ftyp", "MP4/MOV"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (8, b"AVI ", "AVI"))
"""Where a container's signature sits in its first bytes, and the kind of file it marks."""


def _unreadable(path: Path, err: Exception) -> str:
    """Why FFmpeg cannot open `path`, said with what the file's first bytes show it is: the one wording that the
    data check, training, prediction, evaluation and the web apps all give."""
    detail = f"({_ffmpeg_reason(err)})"
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return f"not a readable video {detail}"
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return f"damaged or truncated {kind} file {detail}"
    if _is_text(head):
        return "a text file, not a video"
    return f"not a readable video {detail}"


def _is_text(head: bytes) -> bool:
    """Whether a file's first bytes are printable UTF-8 text (a character cut off at the end of `head` allowed)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if len(head) < _HEAD or err.start < len(head) - 3:
            return False
        text = head[: err.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)


_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif", "gif_pipe"}
"""FFmpeg's demuxers of still images: what a renamed photo opens as."""


def _slices(stream, data: bytes) -> int:
    """Coded slices in one H.264 or HEVC packet; 0 for other codecs."""
    name, extra = stream.codec_context.name, stream.codec_context.extradata or b""
    if name == "h264":
        is_slice = lambda header: header & 0x1F in (1, 5)  # noqa: E731
        length_size = (extra[4] & 3) + 1 if extra[:1] == b"\x01" and len(extra) > 4 else 0
    elif name == "hevc":
        is_slice = lambda header: (header >> 1) & 0x3F < 32  # noqa: E731
        length_size = (extra[21] & 3) + 1 if extra[:1] == b"\x01" and len(extra) > 21 else 0
    else:
        return 0
    count = 0
    if length_size:  # MP4/MKV style: each NAL unit prefixed by its length
        i = 0
        while i + length_size < len(data):
            count += is_slice(data[i + length_size])
            i += length_size + int.from_bytes(data[i : i + length_size], "big")
        return count
    i = data.find(b"\x00\x00\x01")  # Annex B (raw streams, MPEG-TS): NAL units follow start codes
    while 0 <= i < len(data) - 3:
        count += is_slice(data[i + 3])
        i = data.find(b"\x00\x00\x01", i + 3)
    return count


@contextlib.contextmanager
def _clip_errors(path: Path):
    """Turn any FFmpeg or I/O failure inside the block into a `ClipError` naming `path`."""
    import av

    try:
        yield
    except av.ExitError:  # FFmpeg's interrupt callback fired: a read outlasted the timeout
        raise ClipError(path, "reading took longer than the timeout; the file may be damaged") from None
    except (av.FFmpegError, OSError) as err:
        raise ClipError(path, f"decoding failed ({_ffmpeg_reason(err)})") from None
    except MemoryError:
        raise ClipError(path, "decoding ran out of memory; the file may be damaged or far larger than it looks") from None
    except ClipError:
        raise
    except Exception as err:  # noqa: BLE001  a hostile file can drive PyAV into any error; the clip is reported, not the batch
        log.debug("unexpected error decoding %s", path, exc_info=True)
        raise ClipError(path, f"the file is damaged in a way FFmpeg does not report ({type(err).__name__}: {err})") from None


def _ffmpeg_reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def _probe_container(path: Path, container, deadline: _Deadline) -> VideoInfo:
    stream = container.streams.video[0]
    rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
    _check_timing(path, stream, rate)
    first = _first_frame(path, container, stream, deadline)
    check_pixels(path, first.width, first.height, "its first frame is")
    rotation = int(round(first.rotation or 0)) % 360 // 90 * 90
    num_frames = stream.frames
    if num_frames <= 0:  # containers without a frame count (mkv, webm): count packets, no decoding
        container.seek(0)
        num_frames = 0
        for packet in container.demux(stream):
            deadline.check()
            num_frames += packet.size > 0
    if num_frames <= 0:
        raise ClipError(path, "the video stream holds no frames; re-export the clip")
    check_frames(path, int(num_frames))
    duration = _duration(container, stream) or num_frames / rate
    fps = num_frames / duration
    if abs(rate - fps) < 0.01 * fps:  # a constant rate: take the exact one, so late frames do not drift
        fps = rate
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(path, int(num_frames), fps, duration, width, height, rotation)


def _check_timing(path: Path, stream, rate: float) -> None:
    """`ClipError` for timing no real video has: every frame stamped alike (zero frame durations), or a rate
    far below a frame a second (a zeroed timescale, which FFmpeg reads as one tick a second)."""
    entries = getattr(stream, "index_entries", None) or []
    if len(entries) > 1 and len({e.timestamp for e in entries}) == 1:
        raise ClipError(path, "its frames carry no usable timestamps (all are stamped alike: the container's frame "
                              "durations are zero); re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")
    if rate < 0.1:
        raise ClipError(path, f"its frame rate reads as {rate:.2g} frames a second, which no video has (the container's "
                              "timescale is probably damaged); re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")


def _first_frame(path: Path, container, stream, deadline: _Deadline):
    """The first decodable frame (proof that the clip decodes at all)."""
    import av

    try:
        for packet in container.demux(stream):
            deadline.check()
            for frame in stream.decode(packet):
                return frame
    except av.FFmpegError as err:
        raise ClipError(path, f"the first frame does not decode ({_ffmpeg_reason(err)})") from None
    raise ClipError(path, "no frame could be decoded")


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _read_video(path: Path, container, indices: np.ndarray, size: int | None, info: VideoInfo, deadline: _Deadline) -> np.ndarray:
    stream = container.streams.video[0]
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    order = np.unique(indices)
    targets = (start + order / info.fps).tolist()  # seconds on the stream's clock
    out_w, out_h = scaled_size(*_stored_size(info), size)
    convert = _Converter(out_w, out_h, info.rotation)
    decoder = _Decoder(path, container, stream, info.fps, deadline)
    frames, unsure = decoder.run(targets, skip=True)
    if unsure:  # a long gap before a wanted frame in a variable-rate clip: redo those without skipping
        redone, _ = _Decoder(path, container, stream, info.fps, deadline).run([targets[k] for k in unsure], skip=False)
        for k, frame in zip(unsure, redone):
            frames[k] = frame
    arrays = {int(i): convert(f) for i, f in zip(order, frames)}
    return np.stack([arrays[int(i)] for i in indices])


class _Decoder:
    """One pass over a video stream that picks the frame on screen at each of a sorted list of times."""

    def __init__(self, path: Path, container, stream, fps: float, deadline: _Deadline):
        self.path, self.container, self.stream, self.deadline = path, container, stream, deadline
        self.tb = float(stream.time_base)
        self.frame_s = 1.0 / fps
        # The frame picked for time t is the one on screen at t: the last with a timestamp at or before t.
        # One tick of the stream's clock absorbs timestamps rounded to it (Matroska's milliseconds).
        self.slack = min(0.5 / fps, max(self.tb, 1e-6))
        self.margin = SKIP_MARGIN_FRAMES / fps
        self.keyframes = _keyframe_timestamps(stream)  # in stream time base; empty without an index

    def run(self, targets: list[float], skip: bool) -> tuple[list, list[int]]:
        """Frames for `targets` (seconds, sorted, distinct) and the positions whose pick may be wrong.

        With `skip`, packets far from every target are decoded with non-reference
        frames skipped; a pick is unsure when the frame chosen lies further back
        than the margin, so that a skipped frame might have been the one on screen.
        """
        import av

        n = len(targets)
        picked: list = [None] * n
        unsure: list[int] = []
        cc = self.stream.codec_context
        mode = cc.skip_frame = "DEFAULT"
        k = 0  # next target to fill
        pos = None  # stream time of the last packet demuxed; None: unknown, so seek first
        back = 0  # keyframes further back than the nearest one, after landing past target k
        bad = 0
        while k < n:
            seek_to = self._seek_point(targets[k], pos, back)
            if seek_to is not None:
                self.container.seek(seek_to, stream=self.stream, backward=True)
                prev = prev_t = None  # last frame out and its time
                first_t, frames_out = None, 0  # the first frame's time, and frames out since the seek
                skipped = False  # a packet went in with non-reference frames skipped since the seek
                can_back = seek_to > (self.keyframes[0] if self.keyframes else 0)
            restart = False
            for packet in self.container.demux(self.stream):
                self.deadline.check()
                if packet.dts is not None:
                    pos = packet.dts * self.tb
                far = skip and packet.pts is not None and not self._near_target(packet.pts * self.tb, targets)
                if far != (mode == "NONREF"):
                    mode = cc.skip_frame = "NONREF" if far else "DEFAULT"
                skipped |= far
                try:
                    decoded = self.stream.decode(packet)
                except av.InvalidDataError as err:
                    bad += 1
                    if bad > MAX_BAD_PACKETS:
                        raise ClipError(self.path, f"too many damaged packets ({_ffmpeg_reason(err)})") from None
                    continue
                for frame in decoded:
                    self.deadline.check()
                    t = frame.time if frame.time is not None else (0.0 if prev_t is None else prev_t + self.frame_s)
                    first_t = t if first_t is None else first_t
                    frames_out += 1
                    if prev is None and can_back and t > targets[k] + self.slack:
                        back += 1  # landed after the wanted frame: seek one keyframe further back
                        restart = True
                        break
                    first = k
                    while k < n and t > targets[k] + self.slack:
                        picked[k] = prev if prev is not None else frame  # before the first frame: the first frame
                        if prev is not None and skipped and prev_t < targets[k] - self.margin:
                            unsure.append(k)
                        k += 1
                    prev, prev_t = frame, t
                    if k > first:
                        back = 0
                        if k == n or self._seek_point(targets[k], pos, 0) is not None:
                            restart = True
                            break
                if restart:
                    break
            else:  # end of stream: wanted frames past the last one shown
                if prev is None:
                    raise ClipError(self.path, "no frame could be decoded")
                if frames_out > 1 and prev_t - first_t < self.frame_s and targets[-1] - prev_t > 3 * self.frame_s:
                    raise ClipError(
                        self.path,
                        f"its frames carry no usable timestamps (every frame is stamped {prev_t:.2f} s; the container's "
                        "timescale or frame durations are zero); re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4",
                    )
                if targets[-1] - prev_t > 3 * self.frame_s + self.slack:
                    raise ClipError(
                        self.path,
                        f"the video stops at {prev_t:.2f} s but should run to {targets[-1]:.2f} s; "
                        "the file is probably truncated, or its timing is damaged",
                    )
                picked[k:] = [prev] * (n - k)
                k = n
        cc.skip_frame = "DEFAULT"
        return picked, unsure

    def _near_target(self, t: float, targets: list[float]) -> bool:
        """Whether the frame shown at `t` may be picked: at most `margin` before a target or `slack` after."""
        j = bisect.bisect_left(targets, t - self.slack)
        return j < len(targets) and targets[j] - t <= self.margin

    def _seek_point(self, target: float, pos: float | None, back: int) -> int | None:
        """Timestamp to seek to before decoding toward `target`, or None to keep decoding forward.

        With a keyframe index, seek when the keyframe at or before `target` lies
        ahead of the decoder; without one, when `target` is more than
        `SEEK_GAP_S` ahead. The seek goes to `target` itself: demuxers land on
        the keyframe before it (index timestamps can be decoding times, which
        run ahead of display times). After landing past the target, `back`
        steps further back: keyframe by keyframe, or `SEEK_GAP_S` at a time.
        """
        if self.keyframes:
            j = bisect.bisect_right(self.keyframes, target / self.tb) - 1
            if back:
                return self.keyframes[max(j - back, 0)]
            if pos is None or self.keyframes[max(j, 0)] * self.tb > pos + self.frame_s:
                return int(target / self.tb)
            return None
        if pos is None or back:
            return int(max(target - back * SEEK_GAP_S, 0.0) / self.tb)
        return int(target / self.tb) if target - pos > SEEK_GAP_S else None


def _keyframe_timestamps(stream) -> list[int]:
    """Timestamps of the keyframes in the container's index, sorted; empty when it has none."""
    try:
        return sorted({e.timestamp for e in stream.index_entries if e.is_keyframe})
    except AttributeError:  # PyAV before 14 has no index_entries
        return []


def _stored_size(info: VideoInfo) -> tuple[int, int]:
    if info.rotation in (90, 270):
        return info.height, info.width
    return info.width, info.height


class _Converter:
    """Frame -> uint8 (H, W, 3) RGB at the output size, upright; converts each frame once."""

    def __init__(self, width: int, height: int, rotation: int):
        self.width, self.height, self.rotation = width, height, rotation
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, frame) -> np.ndarray:
        key = id(frame)
        if key not in self.cache:
            self.cache[key] = self._convert(frame)
        return self.cache[key]

    def _convert(self, frame) -> np.ndarray:
        if (frame.width, frame.height) == (self.width, self.height):
            rgb = frame.to_ndarray(format="rgb24")
        else:
            # Planar RGB out of swscale keeps the chroma detail that its packed-RGB path
            # loses when scaling; bilinear matches Pillow's bilinear on luma closely.
            rgb = frame.to_ndarray(format="gbrp", width=self.width, height=self.height, interpolation="BILINEAR", channel_last=True)
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.rotation // 90))
        return rgb
