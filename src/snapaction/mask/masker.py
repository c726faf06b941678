"""Applying a run's masking to clips: masks read from the cache or computed once, then the background filled.

`Masker` is what training (`ClipDataset`), prediction, evaluation, the web app
and the timeline hold. Masks are computed on frames decoded with the shorter
side at `Masking.size` (the same whatever size the model sees, so training
and prediction agree), cached by `MaskCache`, and resized to the frames they
hide with nearest-neighbour sampling.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np

from ..data.sampling import on_grid
from ..video import probe, read_frames
from .cache import MaskCache, frames_key, mask_dir
from .settings import Masking, Prompt

log = logging.getLogger(__name__)

MEAN_FILL = (124, 116, 104)
"""The 'mean' fill: ImageNet's mean colour, the same for every clip, so the fill says nothing about the background."""

METHOD_FUNCTIONS = {"motion": "snapaction.mask.motion:motion_masks",
                    "person": "snapaction.mask.person:person_masks",
                    "sam2": "snapaction.mask.sam2:sam2_masks"}
"""method -> the function computing bool (T, H, W) masks of uint8 (T, H, W, 3) frames."""


def compute_masks(masking: Masking, frames: np.ndarray, prompt: Prompt | None = None) -> np.ndarray:
    """bool (T, H, W) masks of uint8 (T, H, W, 3) frames by `masking.method` (no cache)."""
    module, name = METHOD_FUNCTIONS[masking.method].split(":")
    function = getattr(importlib.import_module(module), name)
    if masking.method == "sam2":
        return function(frames, checkpoint=masking.checkpoint, prompt=prompt)
    return function(frames)


def compute_masks_and_notes(masking: Masking, frames: np.ndarray, prompt: Prompt | None = None) -> tuple[np.ndarray, dict]:
    """(masks as `compute_masks` gives them, notes on how they were made: for motion masks, the camera's motion
    as `camera_shift` (share of the shorter side), `camera_zoom` and `camera_reliable` (1 or 0))."""
    if masking.method != "motion":
        return compute_masks(masking, frames, prompt), {}
    from .motion import motion_analysis

    masks, camera = motion_analysis(frames)
    if camera is None:
        return masks, {}
    return masks, {"camera_shift": camera.shift_share(), "camera_zoom": camera.zoom, "camera_reliable": float(camera.reliable)}


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool (T, height, width): nearest-neighbour resize of bool (T, h, w) masks."""
    t, h, w = masks.shape
    if (h, w) == (height, width):
        return masks
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return masks[:, rows][:, :, cols]


def fill_background(frames: np.ndarray, masks: np.ndarray, fill: str) -> np.ndarray:
    """uint8 (T, H, W, 3) frames with the pixels outside bool (T, H, W) `masks` replaced by `fill` (black, blur, mean)."""
    keep = masks[..., None]
    if fill == "black":
        background = np.zeros_like(frames)
    elif fill == "mean":
        background = np.broadcast_to(np.asarray(MEAN_FILL, np.uint8), frames.shape)
    else:
        from scipy import ndimage

        sigma = max(2.0, min(frames.shape[1:3]) / 12)
        background = ndimage.gaussian_filter(frames, sigma=(0, sigma, sigma, 0))
    return np.where(keep, frames, background).astype(np.uint8)


class Masker:
    """A run's masking: masks of a clip's frames read from the cache under `cache_dir`, or computed once and stored.

    `prompts` maps a clip's resolved path to its `Prompt` (pixels of the clip as
    displayed), for SAM 2. `computed` counts masks computed (not read from the cache).
    """

    def __init__(self, masking: Masking, cache_dir: str | Path, prompts: dict[str, Prompt] | None = None):
        self.masking = masking
        self.cache = MaskCache(mask_dir(cache_dir))
        self.prompts = dict(prompts or {})
        self.computed = 0

    def masks(self, path: str | Path, indices, info=None) -> np.ndarray:
        """bool (T, h, w) masks of frames `indices` of a clip, at the size masks are computed on. Raises `ClipError`."""
        indices = np.asarray(indices, np.int64)
        return self._cached(path, frames_key(indices), len(indices), lambda info: indices, info)

    def grid_masks(self, path: str | Path, grid: int, info=None) -> np.ndarray:
        """bool (grid, h, w) masks of the `grid` frames spread over a clip (those training samples from);
        read from the cache without opening the clip."""
        return self._cached(path, frames_key(grid=grid), grid, lambda info: on_grid(info.num_frames, grid), info)

    def _setting(self, path):
        """(the clip's SAM 2 prompt or None, what its cache entries are keyed by besides content and frames)."""
        prompt = self.prompts.get(str(Path(path).resolve()))
        return prompt, self.masking.key() + (f"-{prompt.key()}" if prompt else "")

    def _cached(self, path, frames: str, count: int, indices_of, info) -> np.ndarray:
        prompt, setting = self._setting(path)
        entry = self.cache.entry(path, frames, setting)
        masks = self.cache.read(entry, count)
        if masks is None:
            info = info or probe(path)
            indices = indices_of(info)
            size = self.masking.size if self.masking.size < min(info.width, info.height) else None
            frames = read_frames(path, indices, size=size, info=info)
            if prompt is not None:
                prompt = prompt.scaled(frames.shape[2] / info.width)
            masks, notes = compute_masks_and_notes(self.masking, frames, prompt)
            self.cache.write(entry, masks, notes)
            self.computed += 1
        return masks

    def grid_notes(self, path: str | Path, grid: int) -> dict[str, float]:
        """The notes stored with a clip's grid masks (`compute_masks_and_notes`), once `grid_masks` has made them."""
        return self.cache.notes(self.cache.entry(path, frames_key(grid=grid), self._setting(path)[1]))

    def masked_grid(self, path: str | Path, grid: int, size: int | None, frames: np.ndarray | None = None) -> np.ndarray:
        """uint8 (grid, H, W, 3): the grid's frames (decoded at `size` unless given) with their background filled."""
        if frames is None:
            info = probe(path)
            frames = read_frames(path, on_grid(info.num_frames, grid), size=size, info=info)
        return self.apply(frames, self.grid_masks(path, grid))

    def apply(self, frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """uint8 (T, H, W, 3) frames with the background outside `masks` (bool (T, h, w), any size) filled."""
        return fill_background(frames, resize_masks(masks, *frames.shape[1:3]), self.masking.fill)

    def masked(self, path: str | Path, indices, frames: np.ndarray, info=None) -> np.ndarray:
        """`frames` (frames `indices` of the clip at `path`, any size) with their background filled by masks of
        those frames themselves (a window of a long video)."""
        return self.apply(frames, self.masks(path, indices, info))

    def masked_on_grid(self, path: str | Path, indices, frames: np.ndarray, grid: int, info=None) -> np.ndarray:
        """`frames` (frames `indices` of a clip) filled with the masks of the nearest of the `grid` frames training
        masked: exactly training's masks for frames on the grid, and one set of masks per clip whatever the views."""
        info = info or probe(path)
        on = on_grid(info.num_frames, grid)
        nearest = np.abs(np.asarray(indices)[:, None] - on[None, :]).argmin(axis=1)
        return self.apply(frames, self.grid_masks(path, grid, info)[nearest])

    def masked_array(self, frames: np.ndarray) -> np.ndarray:
        """Frames given as an array (no file, so no cache): masks computed from them at the mask size, then filled."""
        from PIL import Image

        frames = np.asarray(frames)
        h, w = frames.shape[1:3]
        factor = self.masking.size / min(h, w)
        if factor < 1:
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            small = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])
        else:
            small = frames
        self.computed += 1
        return self.apply(frames, compute_masks(self.masking, small))


def masker_for(masking: Masking | dict | None, cache_dir: str | Path, data: str | Path | None = None) -> Masker | None:
    """The `Masker` of a masking setup (or of a run's saved `RunInfo.masking`), None for none.

    With `data` (a CSV manifest), its ``point``/``box`` columns give SAM 2 per-clip prompts.
    """
    if isinstance(masking, dict) or masking is None:
        masking = Masking.from_dict(masking)
    if masking is None:
        return None
    prompts = {}
    if data is not None and Path(data).suffix.lower() == ".csv":
        from .prompts import manifest_prompts

        prompts = manifest_prompts(data)
    return Masker(masking, cache_dir, prompts)
