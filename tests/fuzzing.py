"""Mutation fuzzing of the clip reader: small valid seeds of several containers, byte-level mutations, one oracle.

Used by tests/test_fuzz.py (a few examples in every run) and bench/fuzz.py (for
minutes, in a watched worker process, failing inputs saved). The oracle: `probe`
and `read_frames` of a mutated file return frames of the promised shape or raise
the project's own `ClipError`, within the time bound; anything else is a failure.
"""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import numpy as np

from corpus import encode, moving

SEEDS = {  # name: (suffix, encoder options)
    "h264.mp4": dict(codec="libx264", g="4"),
    "h264_faststart.mp4": dict(codec="libx264", g="4", container_options={"movflags": "+faststart"}),
    "vp8.webm": dict(codec="libvpx", pix_fmt="yuv420p"),
    "mpeg4.avi": dict(codec="mpeg4", pix_fmt="yuv420p"),
    "ffv1.mkv": dict(codec="ffv1", pix_fmt="yuv420p"),
}

INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


def write_seeds(folder: Path) -> list[Path]:
    """Small valid clips (32x24, 12 frames) of each container in `SEEDS`."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = moving(12, 24, 32)
    return [encode(folder / name, frames, **options) for name, options in SEEDS.items()]


def mutate(data: bytes, rng: random.Random, other: bytes | None = None) -> bytes:
    """One to four byte-level mutations: flips, interesting integers (box sizes, counts), cuts, copies, splices."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        at = rng.randrange(len(out))
        kind = rng.randrange(7)
        if kind == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[at] = rng.randrange(256)
        elif kind == 2:  # an interesting 32-bit value, big-endian as MP4 and AVI headers hold them... or little
            value = rng.choice(INTERESTING)
            out[at : at + 4] = struct.pack(rng.choice((">I", "<I")), value & 0xFFFFFFFF)
        elif kind == 3:
            del out[at : at + rng.randint(1, 256)]
        elif kind == 4:
            chunk = out[at : at + rng.randint(1, 256)]
            where = rng.randrange(len(out))
            out[where:where] = chunk
        elif kind == 5:
            del out[rng.randint(len(out) // 4, len(out)) :]
        elif other:
            start = rng.randrange(len(other))
            out[at : at + 512] = other[start : start + 512]
    return bytes(out)


def check(path: Path, timeout: float = 10.0) -> str | None:
    """None when the reader behaves on `path` (frames of the promised shape, or a `ClipError`); else what went wrong."""
    from snapaction.errors import ClipError
    from snapaction.video import probe, read_frames

    started = time.monotonic()
    try:
        info = probe(path, timeout=timeout)
        indices = np.linspace(0, info.num_frames - 1, 8).round().astype(int)
        frames = read_frames(path, indices, size=24, info=info, timeout=timeout)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != 8 or frames.shape[3] != 3:
            return f"frames of shape {frames.shape} {frames.dtype}"
    except ClipError as err:
        if not err.reason:
            return "ClipError without a reason"
    except Exception as err:  # noqa: BLE001  the failure this looks for
        return f"{type(err).__name__}: {err}"
    took = time.monotonic() - started
    if took > 2 * timeout:
        return f"took {took:.1f} s (bound {timeout:g} s)"
    return None
