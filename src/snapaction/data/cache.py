"""Decoded-clip cache: sampled, resized frames kept on disk so later epochs and reruns decode nothing.

An entry holds ``num_frames`` frames spread uniformly over one clip
(`sampling.uniform_indices`), the shorter side scaled to ``size``, as one
``uint8 (T, H, W, C)`` ``.npy`` file. Its key is the clip's content hash plus
the sampling settings and `FORMAT_VERSION`, so a renamed clip still hits and
an edited one misses. Entries are written to a temporary file and moved into
place with `os.replace`, so an interrupted run never leaves a half-written
entry under a real key; an entry that cannot be read back is decoded again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .sampling import uniform_indices
from ..video import frame_files, probe, read_frames

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the decoded pixels of an entry would change (resizing, colour conversion)."""

_STALE_TMP_S = 3600.0
_hash_memo: dict[tuple[str, tuple], str] = {}
_hash_lock = threading.Lock()


def content_hash(path: str | Path) -> str:
    """SHA-256 of a clip's bytes (for a frame folder: of its frames in order), memoised per file size and mtime."""
    path = Path(path)
    files = frame_files(path) if path.is_dir() else [path]
    stats = tuple((f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()])
    memo_key = (str(path.resolve()), stats)
    with _hash_lock:
        if memo_key in _hash_memo:
            return _hash_memo[memo_key]
    digest = hashlib.sha256()
    for f in files:
        with open(f, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    value = digest.hexdigest()
    with _hash_lock:
        _hash_memo[memo_key] = value
    return value


class ClipCache:
    """On-disk cache of decoded clips under `folder` (created when missing)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._tmp = self.folder / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()

    def entry(self, path: str | Path, num_frames: int, size: int | None) -> Path:
        """Where the entry for this clip and these settings lives (it may not exist yet)."""
        setting = f"{content_hash(path)}-{num_frames}-{size or 0}-v{FORMAT_VERSION}"
        key = hashlib.sha256(setting.encode()).hexdigest()[:32]
        return self.folder / key[:2] / f"{key}.npy"

    def load(self, path: str | Path, num_frames: int, size: int | None) -> np.ndarray:
        """``uint8 (num_frames, H, W, C)`` frames of a clip: read from disk, or decoded once and stored.

        Raises `ClipError` (from decoding) when the clip cannot be read.
        """
        entry = self.entry(path, num_frames, size)
        frames = self._read(entry, num_frames)
        if frames is not None:
            return frames
        info = probe(path)
        frames = read_frames(path, uniform_indices(info.num_frames, num_frames), size=size, info=info)
        self._write(entry, frames)
        return frames

    def _read(self, entry: Path, num_frames: int) -> np.ndarray | None:
        try:
            frames = np.load(entry, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as err:
            log.warning("cache entry %s is unreadable (%s); decoding the clip again", entry, err)
            return None
        if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) != num_frames:
            log.warning("cache entry %s holds %s %s, not %d frames; decoding the clip again", entry, frames.dtype, frames.shape, num_frames)
            return None
        return frames

    def _write(self, entry: Path, frames: np.ndarray) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, frames, allow_pickle=False)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _remove_stale_temporaries(self) -> None:
        """Temporary files an interrupted run left behind (old enough that no live writer owns them)."""
        cutoff = time.time() - _STALE_TMP_S
        for tmp in self._tmp.glob("*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:
                pass
