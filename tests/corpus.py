"""A corpus of bad and unusual inputs, written by the tests (no binaries are committed).

Each entry is a file (or folder) a hostile uploader, a damaged disk or an odd
camera produces. `write_corpus` writes them all into one folder and returns
`Entry` records saying what SnapAction must do with each: ``use`` it (it is a
real clip, only unusual) or ``reject`` it with a `ClipError` whose reason
matches ``says``.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    outcome: str
    """``use``, ``reject``, or ``either`` (a damaged tail: usable where the frames a model samples decode)."""
    says: str = ""
    """A regular expression the rejection's reason matches."""


def moving(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3): a texture sliding right, so frames differ and the encoder predicts between them."""
    tex = np.random.default_rng(seed).integers(0, 256, (h, w + 2 * t, 3), dtype=np.uint8)
    return np.stack([tex[:, 2 * i : 2 * i + w] for i in range(t)])


def encode(path: Path, frames: np.ndarray, codec: str = "libx264", pix_fmt: str = "yuv420p", fps: int = 25,
           pts_ms: list[int] | None = None, rotation: int = 0, container_options: dict | None = None, **options) -> Path:
    """Write `frames` (uint8 (T, H, W, 3) RGB) with PyAV; `pts_ms` gives per-frame times for a variable rate."""
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options={"preset": "ultrafast", **options} if "264" in codec else options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def large_clip(path: Path, width: int, height: int, t: int = 2) -> Path:
    """A real `width` x `height` H.264 clip, written from YUV planes (cheap even at 8K): stripes, and a block that changes."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        plane = np.full((height * 3 // 2, width), 128, np.uint8)
        plane[:height] = (np.arange(width) // 16 % 256).astype(np.uint8)
        for i in range(t):
            plane[:64, :64] = 40 * i
            container.mux(stream.encode(av.VideoFrame.from_ndarray(plane, format="yuv420p")))
        container.mux(stream.encode())
    return path


def good_clip(path: Path, t: int = 20, h: int = 48, w: int = 64, seed: int = 0, **kwargs) -> Path:
    return encode(path, moving(t, h, w, seed), **kwargs)


# --- byte surgery on MP4 boxes ----------------------------------------------------


def boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, offset, size) of the boxes in data[start:end] at one level."""
    end = len(data) if end is None else end
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        if size < 8:
            break
        yield kind.decode("latin-1"), i, size
        i += size


def find_box(data: bytes, path: str) -> tuple[int, int]:
    """(offset, size) of the box at `path` ("moov/trak/mdia/mdhd"); containers are descended into."""
    start, end = 0, len(data)
    offset = size = -1
    for part in path.split("/"):
        for kind, off, sz in boxes(data, start, end):
            if kind == part:
                offset, size = off, sz
                break
        else:
            raise KeyError(path)
        start, end = offset + 8, offset + size
        if part == "stsd":
            start += 8  # version/flags and entry count
        elif part == "avc1":
            start += 78  # the visual sample entry's fixed fields
    return offset, size


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def mp4_with_fourcc(good: bytes, fourcc: bytes) -> bytes:
    offset, _ = find_box(good, "moov/trak/mdia/minf/stbl/stsd/avc1")
    return patched(good, offset + 4, fourcc)


def mp4_claiming_size(good: bytes, width: int, height: int) -> bytes:
    """The MP4 headers (tkhd and the sample entry) claim `width` x `height`; the coded frames stay as they are."""
    tkhd, size = find_box(good, "moov/trak/tkhd")
    data = patched(good, tkhd + size - 8, struct.pack(">II", width << 16, height << 16))
    entry, _ = find_box(data, "moov/trak/mdia/minf/stbl/stsd/avc1")
    return patched(data, entry + 8 + 24, struct.pack(">HH", width, height))


def mp4_without_tracks(good: bytes) -> bytes:
    """The MP4 with its one track taken out of the moov box: a valid container that holds no streams at all."""
    moov, size = find_box(good, "moov")
    trak, trak_size = find_box(good, "moov/trak")
    new_moov = struct.pack(">I", size - trak_size) + good[moov + 4 : trak] + good[trak + trak_size : moov + size]
    return good[:moov] + new_moov + good[moov + size :]


def mp4_zero_timescale(good: bytes) -> bytes:
    mdhd, _ = find_box(good, "moov/trak/mdia/mdhd")
    version = good[mdhd + 8]
    at = mdhd + 8 + 4 + (16 if version == 1 else 8)
    return patched(good, at, b"\0\0\0\0")


def mp4_zero_durations(good: bytes) -> bytes:
    stts, size = find_box(good, "moov/trak/mdia/minf/stbl/stts")
    (count,) = struct.unpack(">I", good[stts + 12 : stts + 16])
    data = good
    for k in range(count):
        data = patched(data, stts + 16 + 8 * k + 4, b"\0\0\0\0")
    return data


# --- an H.264 SPS that claims a huge picture ------------------------------------------


class _Bits:
    def __init__(self, data: bytes):
        self.bits = "".join(f"{b:08b}" for b in data)
        self.i = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.i : self.i + n], 2)
        self.i += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.i] == "0":
            zeros += 1
            self.i += 1
        return self.u(zeros + 1) - 1


def _ue(value: int) -> str:
    code = f"{value + 1:b}"
    return "0" * (len(code) - 1) + code


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def sps_claiming(sps: bytes, width: int, height: int) -> bytes:
    """A copy of the H.264 SPS NAL unit `sps` whose picture is `width` x `height` (multiples of 16), cropping off."""
    bits = _Bits(_unescape(sps))
    bits.u(8)  # NAL header
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # sps id
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = bits.ue()
        if chroma == 3:
            bits.u(1)
        bits.ue(), bits.ue(), bits.u(1)
        assert bits.u(1) == 0, "scaling matrices are not handled"
    bits.ue()  # log2_max_frame_num
    poc_type = bits.ue()
    assert poc_type in (0, 2), "pic_order_cnt_type 1 is not handled"
    if poc_type == 0:
        bits.ue()
    bits.ue(), bits.u(1)  # max_num_ref_frames, gaps allowed
    head = bits.bits[: bits.i]
    bits.ue(), bits.ue()  # the size, replaced
    frame_mbs_only = bits.u(1)
    assert frame_mbs_only == 1
    rest = bits.bits[bits.i :]
    direct = rest[0]
    cropping = rest[1] == "1"
    tail = rest[2:]
    if cropping:  # drop the cropping rectangle: the claimed size is exact
        b = _Bits(bytes(int(tail[k : k + 8].ljust(8, "0"), 2) for k in range(0, len(tail), 8)))
        b.ue(), b.ue(), b.ue(), b.ue()
        tail = tail[b.i :]
    tail = tail.rstrip("0")  # the RBSP trailing bits, put back below
    tail = tail[:-1] if tail.endswith("1") else tail
    body = head + _ue(width // 16 - 1) + _ue(height // 16 - 1) + "1" + direct + "0" + tail + "1"
    body += "0" * (-len(body) % 8)
    rbsp = bytes(int(body[k : k + 8], 2) for k in range(0, len(body), 8))
    return _escape(rbsp)


def mp4_with_sps_size(good: bytes, width: int, height: int) -> bytes:
    """The MP4 whose avcC SPS claims `width` x `height` (the headers' sizes too): what a hostile encoder writes."""
    avcc, size = find_box(good, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")
    record = good[avcc + 8 : avcc + size]
    sps_len = struct.unpack(">H", record[6:8])[0]
    sps = record[8 : 8 + sps_len]
    new_sps = sps_claiming(sps, width, height)
    new_record = record[:6] + struct.pack(">H", len(new_sps)) + new_sps + record[8 + sps_len :]
    delta = len(new_record) - len(record)
    box = struct.pack(">I4s", size + delta, b"avcC") + new_record
    data = good[:avcc] + box + good[avcc + size :]
    # grow every enclosing box by delta
    for parent in ("moov", "moov/trak", "moov/trak/mdia", "moov/trak/mdia/minf", "moov/trak/mdia/minf/stbl",
                   "moov/trak/mdia/minf/stbl/stsd", "moov/trak/mdia/minf/stbl/stsd/avc1"):
        off, sz = find_box(good, parent)
        data = patched(data, off, struct.pack(">I", sz + delta))
    mdat_before_moov = find_box(good, "mdat")[0] < find_box(good, "moov")[0]
    assert mdat_before_moov, "write the seed without faststart: chunk offsets stay valid only when moov comes last"
    return mp4_claiming_size(data, width, height)


# --- the corpus ---------------------------------------------------------------------


def write_corpus(folder: Path) -> list[Entry]:
    """Write every corpus entry into `folder` (created) and say what must happen to each."""
    folder.mkdir(parents=True, exist_ok=True)
    seed_dir = Path(tempfile.mkdtemp(prefix="snapaction-corpus-seeds-"))
    plain = good_clip(seed_dir / "plain.mp4").read_bytes()  # moov at the end
    faststart = good_clip(seed_dir / "fast.mp4", t=40, container_options={"movflags": "+faststart"}).read_bytes()
    out: list[Entry] = []

    def put(name: str, data: bytes, outcome: str, says: str = "") -> None:
        path = folder / name
        path.write_bytes(data)
        out.append(Entry(name, path, outcome, says))

    put("index_at_end_cut.mp4", plain[: len(plain) // 2], "reject", "not a readable video|damaged or truncated")
    put("faststart_cut50.mp4", faststart[: len(faststart) // 2], "reject", "truncated|stops at|damaged")
    put("faststart_cut90.mp4", faststart[: len(faststart) * 9 // 10], "either", "truncated|stops at|damaged")
    put("empty.mp4", b"", "reject", "empty")
    put("no_streams.mp4", mp4_without_tracks(plain), "reject", r"the file has no video stream \(it holds no streams at all\)")
    put("text_renamed.mp4", "notes from the shoot, saved under the clip's name\n".encode() * 20, "reject", "a text file, not a video")
    put("random.mp4", np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "reject", "not a readable video")
    put("unknown_fourcc.mp4", mp4_with_fourcc(plain, b"zzzz"), "reject", "no decoder")
    put("header_65535.mp4", mp4_claiming_size(plain, 65535, 65535), "use")
    put("sps_16000.mp4", mp4_with_sps_size(plain, 16000, 16000), "reject", "limit")
    put("zero_timescale.mp4", mp4_zero_timescale(plain), "reject", "timescale")
    put("zero_durations.mp4", mp4_zero_durations(plain), "reject", "no usable timestamps")

    from PIL import Image

    png = seed_dir / "image.png"
    Image.fromarray(moving(1, 48, 64)[0]).save(png)
    put("png_renamed.mp4", png.read_bytes(), "reject", "single image|1 frame")

    def clip(name: str, outcome: str = "use", says: str = "", **kwargs) -> None:
        path = good_clip(folder / name, **kwargs)
        out.append(Entry(name, path, outcome, says))

    clip("one_frame.mp4", "reject", "1 frame", t=1)
    clip("odd_321x239.mp4", t=6, h=239, w=321, codec="libx264rgb", pix_fmt="rgb24")
    clip("rotated.mp4", t=6, rotation=90)
    clip("gray.mkv", t=6, codec="ffv1", pix_fmt="gray")
    clip("ten_bit.mkv", t=6, codec="ffv1", pix_fmt="yuv420p10le")
    clip("vfr.mp4", t=12, codec="libx264rgb", pix_fmt="rgb24", pts_ms=[0, 100, 200, 300, 320, 340, 360, 380, 400, 700, 710, 720])
    clip("long_lowres.mp4", t=1500, h=24, w=32, g="250")
    for name, (w, h) in (("uhd_4k.mp4", (3840, 2160)), ("uhd_8k.mp4", (7680, 4320))):
        out.append(Entry(name, large_clip(folder / name, w, h), "use"))
    clip("name with spaces.mp4", t=6)
    clip("name\nwith newline.mp4", t=6)

    audio = folder / "audio_only.mp4"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = np.zeros((1, 1024), dtype=np.float32)
        for k in range(8):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    out.append(Entry("audio_only.mp4", audio, "reject", "no video stream"))

    raw = os.fsencode(folder) + b"/caf\xe9.mp4"  # a Latin-1 name: not valid UTF-8
    with open(raw, "wb") as f:
        f.write(plain)
    out.append(Entry("caf\\xe9.mp4", Path(os.fsdecode(raw)), "use"))
    broken = os.fsencode(folder) + b"/broken\xff.mp4"  # a bad clip with a bad name: skipped, and its name printed
    with open(broken, "wb") as f:
        f.write(b"\x00" * 2048)
    out.append(Entry("broken\\xff.mp4", Path(os.fsdecode(broken)), "reject", "not a readable video|damaged"))

    (folder / "loop_a.mp4").symlink_to("loop_b.mp4")
    (folder / "loop_b.mp4").symlink_to("loop_a.mp4")
    for name in ("loop_a.mp4", "loop_b.mp4"):
        out.append(Entry(name, folder / name, "reject", "symbolic link|link loop|no such file"))
    bomb = folder / "bomb_frames"  # a frame folder whose second PNG claims 30000x30000 pixels in its header
    bomb.mkdir()
    Image.fromarray(moving(1, 48, 64)[0]).save(bomb / "1.png")
    data = (bomb / "1.png").read_bytes()
    ihdr = struct.pack(">II", 30000, 30000) + data[24:29]
    (bomb / "2.png").write_bytes(data[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + data[33:])
    out.append(Entry("bomb_frames", bomb, "reject", "limit"))
    fifo = folder / "fifo.mp4"
    os.mkfifo(fifo)
    out.append(Entry("fifo.mp4", fifo, "reject", "not a regular file"))
    return out
