"""Shared fixtures: synthetic clips written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_video(path: Path, frames: np.ndarray, fps: int = 25, codec: str = "libx264rgb", **options) -> Path:
    """Write `frames` (uint8 (T, H, W, C)) as a video; libx264rgb at qp 0 is lossless."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    opts = {"qp": "0"} if codec == "libx264rgb" else {}
    opts.update(options)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=opts)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture
def random_frames():
    """Factory for random uint8 (T, H, W, C) frames."""

    def make(t: int = 20, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)

    return make
