"""Which frames of a clip to read: small pure functions over frame counts.

Every function returns frame indices as an int64 array; `video.read_frames`
turns indices into pixels. Two ways of choosing frames:

- ``uniform``: ``n`` frames spread over the whole clip, one from the middle of
  each of ``n`` equal segments (TSN-style). Training jitter picks a random frame
  inside each segment instead of the middle one.
- ``strided``: a window of ``n`` frames taken every ``stride`` frames. Training
  picks a random window start (temporal jitter); evaluation centres the window.

Padding rule for clips shorter than asked: the indices are always
non-decreasing and cover the clip as evenly as possible, so a clip with fewer
than ``n`` frames repeats frames in place (``[0, 0, 1, 1, 2, 2, ...]``), never
wraps around and never reverses time. A strided window that does not fit
shrinks its stride to the largest one that fits before repeating anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check, option

SAMPLING_MODES = ("uniform", "strided")


@dataclass(frozen=True)
class Sampling:
    """How frames are chosen from one clip."""

    num_frames: int = option(16, "frames the model sees per clip (default: the backbone's own: a checkpoint's frame count, 8 for scratch, 16 for pose)")
    mode: str = option("uniform", "'uniform': spread over the whole clip; 'strided': a window of frames every STRIDE frames (default: the backbone's own: uniform, strided for scratch)", SAMPLING_MODES, flag="--sampling")
    stride: int = option(4, "frame step inside a window, for --sampling strided (default: 4; 2 for scratch)")
    grid: int | None = None
    """Spread this many frames evenly over the clip first and choose from those (None: every frame).

    Training sets it to the number of cached frames per clip, so training,
    validation and prediction pick the same frames whether or not a cache is
    used; it is saved with the run."""

    def __post_init__(self):
        problems = []
        if self.mode not in SAMPLING_MODES:
            problems.append(f"sampling mode {self.mode!r} is not one of {list(SAMPLING_MODES)}")
        if self.num_frames < 1:
            problems.append(f"num_frames must be at least 1, got {self.num_frames}")
        if self.stride < 1:
            problems.append(f"stride must be at least 1, got {self.stride}")
        if self.grid is not None and self.grid < 1:
            problems.append(f"grid must be at least 1, got {self.grid}")
        check(problems, "sampling")

    def describe(self) -> str:
        """One line for logs: '8 frames, strided every 2, from a grid of 16 per clip'."""
        how = f"strided every {self.stride}" if self.mode == "strided" else "uniform over the clip"
        grid = f", from a grid of {self.grid} per clip" if self.grid else ""
        return f"{self.num_frames} frames, {how}{grid}"


def uniform_indices(length: int, n: int, offset: float | np.ndarray = 0.5) -> np.ndarray:
    """`n` indices into a clip of `length` frames, one per equal segment.

    `offset` in [0, 1) places the index inside its segment (0.5 = middle); an
    array of `n` offsets gives each segment its own (training jitter).
    """
    _check_length(length)
    pos = (np.arange(n) + np.asarray(offset, dtype=np.float64)) * (length / n)
    return np.clip(np.floor(pos), 0, length - 1).astype(np.int64)


def strided_indices(length: int, n: int, stride: int, start: int) -> np.ndarray:
    """`n` indices from `start`, every `stride` frames, for a clip of `length` frames.

    The caller chooses `start` (see `window_start`); indices past the end are
    held at the last frame.
    """
    _check_length(length)
    return np.minimum(start + stride * np.arange(n), length - 1).astype(np.int64)


def fitted_stride(length: int, n: int, stride: int) -> int:
    """The largest stride <= `stride` whose window of `n` frames fits in `length`."""
    if n <= 1:
        return stride
    return max(1, min(stride, (length - 1) // (n - 1)))


def window_start(length: int, span: int, rng: np.random.Generator | None = None) -> int:
    """Start of a window of `span` frames: random with `rng`, centred without."""
    room = max(0, length - span)
    if rng is None:
        return room // 2
    return int(rng.integers(0, room + 1))


def on_grid(length: int, grid: int | None) -> np.ndarray:
    """Indices of the frames sampling chooses from: `grid` spread evenly over the clip, or all."""
    return uniform_indices(length, grid) if grid else np.arange(length, dtype=np.int64)


def sample_indices(length: int, sampling: Sampling, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of one clip's frames: jittered when `rng` is given (training), fixed otherwise."""
    base = on_grid(length, sampling.grid)
    return base[_sample(len(base), sampling, rng)]


def _sample(length: int, sampling: Sampling, rng: np.random.Generator | None) -> np.ndarray:
    n = sampling.num_frames
    if sampling.mode == "uniform" or length < n:
        offset = 0.5 if rng is None else rng.random(n)
        return uniform_indices(length, n, offset)
    stride = fitted_stride(length, n, sampling.stride)
    start = window_start(length, (n - 1) * stride + 1, rng)
    return strided_indices(length, n, stride, start)


def view_indices(length: int, sampling: Sampling, views: int) -> np.ndarray:
    """`views` evenly spaced temporal views of one clip, shape (views, num_frames).

    Uniform sampling shifts the position inside every segment
    ((k + 0.5) / views for view k); strided sampling spreads the window starts
    evenly from the first to the last possible one. On a grid, view k's grid is
    shifted the same way. One view equals `sample_indices(length, sampling)`
    without jitter.
    """
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    if not sampling.grid:
        return _views(length, sampling, views)
    # View k also shifts the grid by (k + 0.5) / views of a grid step, so views differ even
    # where the grid leaves little room for the window to move.
    inner = _views(sampling.grid, sampling, views)
    bases = [uniform_indices(length, sampling.grid, (k + 0.5) / views) for k in range(views)]
    return np.stack([base[row] for base, row in zip(bases, inner)])


def _views(length: int, sampling: Sampling, views: int) -> np.ndarray:
    n = sampling.num_frames
    if views == 1:
        return _sample(length, sampling, None)[None]
    if sampling.mode == "uniform" or length < n:
        return np.stack([uniform_indices(length, n, (k + 0.5) / views) for k in range(views)])
    stride = fitted_stride(length, n, sampling.stride)
    room = max(0, length - ((n - 1) * stride + 1))
    starts = np.round(np.linspace(0, room, views)).astype(np.int64)
    return np.stack([strided_indices(length, n, stride, int(s)) for s in starts])


def _check_length(length: int) -> None:
    if length < 1:
        raise ValueError(f"a clip needs at least one frame, got length {length}")
