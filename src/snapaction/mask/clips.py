"""Masks for every clip of a dataset, computed once into the cache, with a summary of what came out.

`mask_clips` is what ``snapaction mask DATA`` and training (before its first
epoch) run: a progress bar, then a `MaskReport` with the clips, seconds per
computed clip, the mean foreground share, and the clips whose mask is empty or
covers almost everything, listed so that they are never used silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ClipError
from .masker import Masker

log = logging.getLogger(__name__)

EMPTY_SHARE = 0.01
"""A clip whose masks cover less than this share of its frames has no foreground found: training leaves it out."""

FULL_SHARE = 0.9
"""A clip whose masks cover more than this share hides almost nothing: it is listed, and kept."""


@dataclass
class MaskReport:
    """What masking a set of clips found."""

    clips: int = 0
    computed: int = 0
    """Clips whose masks were computed now (the rest came from the cache)."""
    seconds: float = 0.0
    """Seconds spent computing (decoding included), over `computed` clips."""
    shares: dict[str, float] = field(default_factory=dict)
    """Mean foreground share of every clip masked, by path."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of clips that could not be read."""

    @property
    def empty(self) -> list[str]:
        return [p for p, s in self.shares.items() if s < EMPTY_SHARE]

    @property
    def full(self) -> list[str]:
        return [p for p, s in self.shares.items() if s > FULL_SHARE]

    @property
    def seconds_per_clip(self) -> float:
        return self.seconds / self.computed if self.computed else 0.0

    def summary(self, method: str) -> str:
        """Lines for the terminal: the totals, then every clip listed with why."""
        mean = float(np.mean(list(self.shares.values()))) if self.shares else 0.0
        pace = f"{self.seconds_per_clip:.2f} s per clip" if self.computed else "no clip needed computing"
        lines = [f"{method} masks of {self.clips} clips ({self.computed} computed now, {self.clips - self.computed - len(self.failed)} "
                 f"from the cache; {pace}); mean foreground {mean:.1%} of the frame"]
        for path in self.empty:
            lines.append(f"  empty mask (foreground {self.shares[path]:.1%}; left out of training): {path}")
        for path in self.full:
            lines.append(f"  mask covers almost everything (foreground {self.shares[path]:.1%}; hides nothing): {path}")
        for path, reason in self.failed:
            lines.append(f"  cannot read: {path}: {reason}")
        return "\n".join(lines)


def mask_clips(paths, masker: Masker, grid: int, progress: bool = True) -> MaskReport:
    """Masks of the `grid` frames spread over each clip in `paths`, from the cache or computed once and stored.

    A clip that cannot be read is reported in the result and skipped; the rest go on.
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    report = MaskReport(clips=len(paths))
    for path in tqdm(paths, desc=f"{masker.masking.method} masks", unit="clip", disable=not progress, leave=False):
        before = masker.computed
        started = time.perf_counter()
        try:
            masks = masker.grid_masks(path, grid)
        except ClipError as err:
            log.warning("%s", err)
            report.failed.append((str(path), err.reason))
            continue
        if masker.computed > before:
            report.computed += 1
            report.seconds += time.perf_counter() - started
        report.shares[str(path)] = float(masks.mean())
    return report


def mask_grid(backbone: str, num_frames: int | None = None, cache_frames: int | None = None) -> int:
    """The grid of frames per clip a training run with these options masks (as `resolve_sampling` lays it out),
    read without loading the model's weights."""
    import json

    from ..models.presets import preset

    named = preset(backbone)
    if num_frames is None:
        if named is not None:
            num_frames = named.sampling.num_frames
        else:
            from ..models.hub import resolve_backbone

            config = json.loads((Path(resolve_backbone(backbone)) / "config.json").read_text())
            num_frames = config.get("num_frames") or 16
    return cache_frames or max(16, 2 * num_frames)


def mask_training_data(data, masking, cache_dir: str | Path, source: str | Path, grid: int, say=print) -> Masker:
    """Before training: masks of every training and validation clip of `data` (a `Data`), computed once.

    Clips whose mask is empty are moved to ``data.skipped`` with the reason (a
    black clip teaches nothing); clips whose mask covers almost everything are
    kept and listed. Returns the run's `Masker`.
    """
    from .masker import masker_for

    masker = masker_for(masking, cache_dir, source)
    report = mask_clips([s.path for s in data.train + data.val], masker, grid)
    say(report.summary(masking.method))
    empty = set(report.empty) | {p for p, _ in report.failed}
    if empty:
        reasons = dict(report.failed)
        for path in report.empty:
            reasons[path] = f"its {masking.method} mask is empty (no foreground found): masked, it would be a blank clip"
        data.skipped.extend((p, reasons[p]) for p in sorted(empty))
        data.train = [s for s in data.train if str(s.path) not in empty]
        data.val = [s for s in data.val if str(s.path) not in empty]
        if len({s.label for s in data.train}) < 2 or not data.val:
            from ..errors import DataError

            raise DataError(f"after leaving out the {len(empty)} clips whose {masking.method} mask is empty, too few clips are left to "
                            f"train and validate on; try another --mask method (listed above: the clips and why)")
    return masker


def mask_dataset(data: str | Path, masking, cache_dir: str | Path, grid: int, progress: bool = True) -> MaskReport:
    """``snapaction mask DATA``: masks of every clip `scan` finds in `data` (a folder or manifest), into the cache.

    Files that are not clips are reported in the result (``failed``) with the reason `scan` gives.
    """
    from ..data.layout import scan
    from .masker import masker_for

    clips = scan(data)
    masker = masker_for(masking, cache_dir, data)
    report = mask_clips([s.path for s in clips.samples], masker, grid, progress)
    report.failed = [(str(p), r) for p, r in clips.skipped] + report.failed
    return report
