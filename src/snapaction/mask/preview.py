"""Seeing what masking keeps: a PNG strip of frames spread over a clip, the mask drawn over each."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..video import probe, read_frames
from .masker import Masker, resize_masks


def overlay(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3): the background darkened, the foreground tinted green and outlined, for bool (T, H, W) masks."""
    from scipy import ndimage

    out = frames.astype(np.float32)
    keep = masks[..., None]
    tinted = 0.65 * out + 0.35 * np.array([40, 255, 90], np.float32)
    out = np.where(keep, tinted, 0.35 * out)
    edges = masks & ~np.stack([ndimage.binary_erosion(m, iterations=2) for m in masks])
    out[edges] = (40, 255, 90)
    return out.clip(0, 255).astype(np.uint8)


def write_preview(clip: str | Path, masker: Masker, out_png: str | Path, frames: int = 6, height: int = 180,
                  grid: int = 16) -> Path:
    """Write a PNG strip of `frames` frames spread over `clip` with the masks of `masker` drawn on them: the masks of
    the `grid` frames training masks (from the cache, or computed once and stored), `frames` of them shown.
    Returns the PNG's path."""
    import io

    from PIL import Image

    from ..data.sampling import on_grid
    from ..errors import SnapActionError
    from ..files import atomic_write

    info = probe(clip)
    grid = max(grid, frames)
    shown = np.linspace(0, grid - 1, frames).round().astype(int)
    indices = on_grid(info.num_frames, grid)[shown]
    masks = masker.grid_masks(clip, grid, info)[shown]
    size = height if height < min(info.width, info.height) else None
    pixels = read_frames(clip, indices, size=size, info=info)
    drawn = overlay(pixels, resize_masks(masks, *pixels.shape[1:3]))
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(list(drawn), axis=1)).save(buf, format="PNG")
    out_png = Path(out_png)
    try:
        atomic_write(out_png, buf.getvalue())
    except OSError as err:
        raise SnapActionError(f"cannot write the preview {out_png}: {err.strerror or err}; pass --out a path you can write to") from None
    return out_png


def masked_view(predictor, path: str | Path, frames: int = 8, height: int = 96) -> str | None:
    """For a predictor whose run masks (``predictor.masker``): the frames its model saw of a clip, background
    hidden, as a PNG data URL (a strip of up to `frames` of them); None for a run without masks.

    The masks are the ones prediction used (read from the cache, not computed again)."""
    masker = getattr(predictor, "masker", None)
    if masker is None:
        return None
    import base64
    import io

    from PIL import Image

    from ..data.sampling import view_indices

    info = probe(path)
    indices = view_indices(info.num_frames, predictor.sampling, 1)[0]
    indices = indices[np.linspace(0, len(indices) - 1, min(frames, len(indices))).round().astype(int)]
    size = height if height < min(info.width, info.height) else None
    pixels = read_frames(path, indices, size=size, info=info)
    shown = masker.masked_on_grid(path, indices, pixels, predictor.sampling.grid, info)
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(list(shown), axis=1)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
