"""Mask cache: each clip's foreground masks computed once and kept on disk.

An entry holds the bool (T, H, W) masks of frames ``indices`` of one clip, at
the size masks are computed on (`Masking.size`), as a compressed ``.npz``.
Its key is the clip's content hash, the frame indices, the method's settings
(`Masking.key`: method, its version, size, checkpoint) and the prompt, so a
renamed clip still hits and an edited one, or other settings, miss. The fill
is not part of the key: it is applied after. Entries are written through
`files.atomic_write` (a temporary file moved into place), so an interrupted
run never leaves a half-written entry; one that cannot be read is computed again.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from ..data.cache import content_hash
from ..files import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def mask_dir(cache_dir: str | Path) -> Path:
    """Where masks are cached under SnapAction's cache folder: `snapaction mask`, training and prediction share it."""
    return Path(cache_dir) / "masks"


def frames_key(indices=None, grid: int | None = None) -> str:
    """What names the frames of an entry: a grid of `grid` frames spread over the clip, or these frame indices."""
    if grid is not None:
        return f"grid{grid}"
    return hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()[:16]


class MaskCache:
    """On-disk masks under `folder` (created on first write)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def entry(self, path: str | Path, frames: str, setting: str) -> Path:
        """Where the masks of the frames `frames` names (`frames_key`) of this clip, computed with `setting`, live
        (they may not exist yet)."""
        key = hashlib.sha256(f"{content_hash(path)}-{frames}-{setting}-v{FORMAT_VERSION}".encode()).hexdigest()[:32]
        return self.folder / key[:2] / f"{key}.npz"

    def read(self, entry: Path, count: int) -> np.ndarray | None:
        """The bool (count, H, W) masks of an entry, or None when it is missing or damaged (then logged)."""
        try:
            with np.load(entry, allow_pickle=False) as data:
                masks = np.unpackbits(data["bits"], axis=-1)[..., : int(data["width"])].astype(bool)
        except FileNotFoundError:
            return None
        except Exception as err:  # any damage: zip, header, missing or misshapen array
            log.warning("mask cache entry %s is unreadable (%r); computing the masks again", entry, err)
            return None
        if masks.ndim != 3 or len(masks) != count:
            log.warning("mask cache entry %s holds masks of shape %s, not %d frames; computing again", entry, masks.shape, count)
            return None
        return masks

    def write(self, entry: Path, masks: np.ndarray, notes: dict | None = None) -> None:
        """Store masks, and `notes` (name -> number) on how they were made (the camera's motion, for motion masks)."""
        buf = io.BytesIO()
        extra = {f"note_{k}": np.float64(v) for k, v in (notes or {}).items()}
        np.savez_compressed(buf, bits=np.packbits(np.asarray(masks, bool), axis=-1), width=np.int64(masks.shape[-1]), **extra)
        atomic_write(entry, buf.getvalue())

    def notes(self, entry: Path) -> dict[str, float]:
        """The notes stored with an entry ({} when it has none or cannot be read)."""
        try:
            with np.load(entry, allow_pickle=False) as data:
                return {k[5:]: float(data[k]) for k in data.files if k.startswith("note_")}
        except Exception:  # missing or damaged: the masks themselves will be computed again
            return {}
