"""Camera motion in a clip: how the whole frame shifts, zooms and turns between frames, and frames aligned to undo it.

Motion masks (`motion.motion_masks`) take what differs from a clip's still
background; a camera that pans or zooms makes the whole background differ.
`estimate_camera` finds, for every frame, the similarity transform (shift,
zoom, a small turn) that maps it onto the first frame, from corners tracked
between consecutive frames (OpenCV's pyramidal Lucas-Kanade flow and a RANSAC
fit, `cv2.estimateAffinePartial2D`, so what moves on its own is left out of
the fit). Without OpenCV (it comes with the pose extra) a numpy phase
correlation measures the shift alone. `Camera.canvas` lays all frames on one
canvas large enough for the whole pan; `align` warps frames onto it and
`to_frames` brings per-pixel results back to each frame.

Transforms are 3x3 matrices on pixel coordinates (x, y, 1), x to the right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STILL_PIXELS = 2.0
"""A camera whose frame corners move less than this many pixels (at the mask size) over the clip is still."""

MAX_CANVAS = 2.0
"""The canvas of an aligned clip is at most this many times the frame's side (a longer pan is cut to it)."""

BETTER_BY = 0.75
"""A measured step is kept only where it explains the frames: the median difference of the two frames aligned by
it must be under this share of their difference as they are (otherwise the camera counts as still for that step,
so a still camera is never 'aligned' by a fit to what moves in front of it)."""

MIN_TRACKED = 12
"""Consecutive frames with fewer tracked corners than this (or under half of them fitting one motion) are not
measured: that step counts as still, and the clip's estimate as unreliable."""


@dataclass
class Camera:
    """The camera's motion through a clip's frames: `transforms` float64 (T, 3, 3) map each frame onto the first."""

    transforms: np.ndarray
    size: tuple[int, int]
    """(height, width) of the frames."""
    reliable: bool = True
    """False when some consecutive frames could not be matched (too little texture, a cut, a blur)."""

    @property
    def displacement(self) -> float:
        """The most any frame corner moves (pixels) relative to the first frame."""
        return float(self.corner_shifts().max(initial=0.0))

    def corner_shifts(self) -> np.ndarray:
        """float (T,): the largest corner displacement of each frame against the first, in pixels."""
        h, w = self.size
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T  # (3, 4)
        moved = self.transforms @ corners  # (T, 3, 4)
        return np.linalg.norm(moved[:, :2] - corners[None, :2], axis=1).max(axis=1)

    @property
    def moving(self) -> bool:
        return self.displacement >= STILL_PIXELS

    @property
    def zoom(self) -> float:
        """The largest change of scale against the first frame (0.1: 10% larger or smaller)."""
        scales = np.sqrt(np.abs(np.linalg.det(self.transforms[:, :2, :2])))
        return float(np.abs(np.log(scales)).max(initial=0.0))

    def shift_share(self) -> float:
        """`displacement` as a share of the frame's shorter side."""
        return self.displacement / min(self.size)

    def canvas(self) -> tuple[np.ndarray, tuple[int, int]]:
        """(float64 (T, 3, 3) transforms of each frame onto the canvas, (height, width) of the canvas)."""
        h, w = self.size
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T
        placed = (self.transforms @ corners)[:, :2]  # (T, 2, 4)
        low = placed.min(axis=(0, 2))
        high = placed.max(axis=(0, 2))
        extra = np.array([w, h]) * (MAX_CANVAS - 1) / 2  # a pan longer than the cap is cut evenly on both sides
        centre = np.array([w, h]) / 2
        low = np.maximum(low, centre - np.array([w, h]) / 2 - extra)
        high = np.minimum(high, centre + np.array([w, h]) / 2 + extra)
        shift = np.eye(3)
        shift[:2, 2] = -np.floor(low)
        size = (int(np.ceil(high[1] - np.floor(low[1]))), int(np.ceil(high[0] - np.floor(low[0]))))
        return shift @ self.transforms, size


def estimate_camera(frames: np.ndarray) -> Camera:
    """The camera's motion through uint8 (T, H, W, 3) frames (OpenCV when installed, else shift only)."""
    frames = np.asarray(frames)
    t, h, w = frames.shape[:3]
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # (T, H, W)
    try:
        import cv2
    except ImportError:
        cv2 = None
    transforms = np.repeat(np.eye(3)[None], t, 0)
    reliable = True
    for i in range(1, t):
        step = _step_cv2(cv2, grey[i - 1], grey[i]) if cv2 is not None else _step_phase(grey[i - 1], grey[i])
        if step is None:
            reliable = False
            step = np.eye(3)
        elif not _explains(step, grey[i - 1], grey[i]):
            step = np.eye(3)
        transforms[i] = transforms[i - 1] @ step
    return Camera(transforms, (h, w), reliable)


def _explains(step: np.ndarray, previous: np.ndarray, current: np.ndarray) -> bool:
    """True when `step` (current -> previous) aligns the two grey frames clearly better than leaving them as they are."""
    if np.allclose(step, np.eye(3), atol=1e-3):
        return False
    moved = warp(current, step, previous.shape, fill=np.nan)
    seen = ~np.isnan(moved)
    if seen.mean() < 0.25:
        return False
    aligned = float(np.median(np.abs(moved[seen] - previous[seen])))
    still = float(np.median(np.abs(current[seen] - previous[seen])))
    return aligned < BETTER_BY * still


def _step_cv2(cv2, previous: np.ndarray, current: np.ndarray) -> np.ndarray | None:
    """3x3 similarity mapping `current`'s pixels onto `previous`'s, or None when they cannot be matched."""
    a, b = previous.astype(np.uint8), current.astype(np.uint8)
    points = cv2.goodFeaturesToTrack(a, maxCorners=300, qualityLevel=0.01, minDistance=4, blockSize=5)
    if points is None or len(points) < MIN_TRACKED:
        return None
    found, status, _ = cv2.calcOpticalFlowPyrLK(a, b, points, None, winSize=(21, 21), maxLevel=3)
    ok = status.ravel() == 1
    if ok.sum() < MIN_TRACKED:
        return None
    fit, inliers = cv2.estimateAffinePartial2D(found[ok], points[ok], method=cv2.RANSAC, ransacReprojThreshold=1.5)
    if fit is None or inliers is None or inliers.sum() < max(MIN_TRACKED, ok.sum() / 2):
        return None
    return np.vstack([fit, [0, 0, 1]])


def _step_phase(previous: np.ndarray, current: np.ndarray) -> np.ndarray | None:
    """3x3 shift mapping `current` onto `previous` by phase correlation (numpy), or None when no peak stands out."""
    h, w = previous.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    fa = np.fft.fft2((previous - previous.mean()) * window)
    fb = np.fft.fft2((current - current.mean()) * window)
    cross = fa * np.conj(fb)
    cross /= np.abs(cross) + 1e-9
    surface = np.fft.ifft2(cross).real
    peak = np.unravel_index(np.argmax(surface), surface.shape)
    if surface[peak] < 5 * surface.std():
        return None
    dy, dx = (p if p <= n // 2 else p - n for p, n in zip(peak, (h, w)))
    # previous(x) ~ current(x - d): a pixel at x in `current` sits at x + d in `previous`
    step = np.eye(3)
    step[:2, 2] = (dx, dy)
    return step


def warp(image: np.ndarray, transform: np.ndarray, size: tuple[int, int], order: int = 1, fill: float = 0.0) -> np.ndarray:
    """`image` (H, W) or (H, W, C) moved by `transform` (its pixel x lands at transform @ x) onto a (height, width)
    grid; pixels from outside the image get `fill`."""
    from scipy import ndimage

    inverse = np.linalg.inv(transform)
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], np.float64)
    rc = swap @ inverse @ swap  # the same map on (row, col) coordinates, output -> input
    image = np.asarray(image)
    if image.ndim == 2:
        return ndimage.affine_transform(image, rc[:2, :2], offset=rc[:2, 2], output_shape=size, order=order, cval=fill)
    return np.stack([warp(image[..., c], transform, size, order, fill) for c in range(image.shape[-1])], axis=-1)


def align(frames: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 (T, h, w, 3) frames on the canvas, bool (T, h, w) where each frame has pixels, float64 (T, 3, 3)
    transforms from each frame onto the canvas)."""
    placed, size = camera.canvas()
    frames = np.asarray(frames, np.float32)
    aligned = np.stack([warp(f, m, size) for f, m in zip(frames, placed)])
    ones = np.ones(frames.shape[1:3], np.float32)
    valid = np.stack([warp(ones, m, size, order=0) > 0.5 for m in placed])
    return aligned, valid, placed


def to_frames(values: np.ndarray, placed: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 (T, H, W): per-pixel `values` (T, h, w) on the canvas read back at each frame's own pixels."""
    return np.stack([warp(v, np.linalg.inv(m), size) for v, m in zip(values, placed)]).astype(np.float32)
