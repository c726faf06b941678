"""Motion masks: what differs from the clip's own still background. No weights at all.

The background is the per-pixel median of the clip's frames (anything that
moves covers a pixel in fewer than half of them); a pixel is foreground where
its colour differs from the background by more than the clip's own noise
allows. Morphology then removes specks, closes holes and drops regions too
small to be a person or an object. A thing that stands still for most of the
clip becomes background, and a clip of one frame has no motion: both give an
empty mask, which `snapaction mask` reports.

A camera that pans, shakes or zooms would make the whole background differ
from the median. Its motion is measured first (`camera.estimate_camera`): when
the frame moves by a pixel or more, the frames are aligned on one canvas, the
background is the median of the aligned frames (each pixel over the frames that
see it), and the differences are brought back to each frame. A still camera
takes the plain path, unchanged.
"""

from __future__ import annotations

import numpy as np

MIN_DIFFERENCE = 25
"""Colour difference (0-255, largest channel) below which a pixel always counts as background."""

NOISE_FACTOR = 4.0
"""A pixel is foreground when its difference exceeds this many times the clip's median difference (its noise)."""

MIN_AREA = 0.002
"""Regions smaller than this share of the frame are dropped as specks."""


COMPENSATE = True
"""Align the frames when the camera moves (off: the still-camera method, for comparisons in bench/mask_real.py)."""


def motion_masks(frames: np.ndarray) -> np.ndarray:
    """bool (T, H, W) foreground masks of uint8 (T, H, W, 3) frames, from their median background."""
    return motion_analysis(frames)[0]


def motion_analysis(frames: np.ndarray):
    """(bool (T, H, W) masks, the `camera.Camera` measured, or None for fewer than two frames)."""
    from scipy import ndimage

    frames = np.asarray(frames)
    t, h, w = frames.shape[:3]
    if t < 2:
        return np.zeros((t, h, w), bool), None
    from .camera import estimate_camera

    camera = estimate_camera(frames)
    if COMPENSATE and camera.moving:
        diff = _aligned_difference(frames, camera)
    else:
        background = np.median(frames, axis=0).astype(np.int16)  # (H, W, 3)
        diff = np.abs(frames.astype(np.int16) - background).max(axis=-1).astype(np.float32)  # (T, H, W)
    side = min(h, w)
    diff = ndimage.gaussian_filter(diff, sigma=(0, max(0.5, side / 200), max(0.5, side / 200)))
    threshold = max(MIN_DIFFERENCE, NOISE_FACTOR * float(np.median(diff)))
    open_k = _disk(side / 120)
    close_k = _disk(side / 40)
    min_area = MIN_AREA * h * w
    out = np.zeros((t, h, w), bool)
    for i, d in enumerate(diff):
        m = ndimage.binary_opening(d > threshold, open_k)
        # closing near the border must not eat regions that touch it: pad first
        pad = close_k.shape[0]
        m = ndimage.binary_closing(np.pad(m, pad, mode="edge"), close_k)[pad:-pad, pad:-pad]
        out[i] = ndimage.binary_fill_holes(_drop_small(m, min_area))
    return out, camera


def _aligned_difference(frames: np.ndarray, camera) -> np.ndarray:
    """float32 (T, H, W): each frame's largest channel difference from the median of the frames aligned on one
    canvas; 0 where fewer than a quarter of the frames (at least 2) see the background."""
    from .camera import align, to_frames

    t, h, w = frames.shape[:3]
    aligned, valid, placed = align(frames, camera)  # (T, h', w', 3), (T, h', w')
    stack = np.where(valid[..., None], aligned, np.nan)
    ordered = np.sort(stack, axis=0)  # NaN (not seen) sorts last
    seen = valid.sum(axis=0)  # (h', w')
    low = np.clip((seen - 1) // 2, 0, t - 1)[None, ..., None]
    high = np.clip(seen // 2, 0, t - 1)[None, ..., None]
    background = (np.take_along_axis(ordered, low, 0) + np.take_along_axis(ordered, high, 0))[0] / 2  # (h', w', 3)
    known = valid & (seen >= max(2, t // 4))[None]
    diff = np.where(known, np.abs(aligned - background).max(axis=-1), 0.0)
    return to_frames(np.nan_to_num(diff), placed, (h, w))


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r


def _drop_small(mask: np.ndarray, min_area: float) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    keep[0] = False
    return keep[labels]
