"""Masks for every clip of a dataset, computed once into the cache, with a summary of what came out.

`mask_clips` is what ``snapaction mask DATA`` and training (before its first
epoch) run: a progress bar, then a `MaskReport` with the clips, seconds per
computed clip, and each clip's `ClipStats`: its foreground share, how much its
mask flickers from frame to frame, the camera's motion (motion masks), and the
flags that single it out (empty, near-full, flickering, camera moving), so
that no doubtful mask is used silently.
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

FLICKER = 0.6
"""A clip whose consecutive masks overlap less than this (1 - mean IoU above it) is listed as flickering: the
mask jumps between frames (parts found and lost), so the model sees a different cut-out every frame."""

CAMERA_SHIFT = 0.0125
"""Motion masks of a clip whose frame moves more than this share of its shorter side (2 px at the mask size) were
made with the frames aligned (`camera`); the clip is listed, and as unreliable where the alignment was not sure."""


def flicker(masks: np.ndarray) -> float:
    """1 - the mean IoU of consecutive frames' bool (T, H, W) masks: 0 for a mask that keeps its shape, 1 for masks
    that never overlap. Pairs where both masks are empty are left out (nothing to flicker); a clip with none is 0."""
    a, b = masks[:-1], masks[1:]
    union = (a | b).sum(axis=(1, 2))
    shown = union > 0
    if not shown.any():
        return 0.0
    return float(1 - ((a & b).sum(axis=(1, 2))[shown] / union[shown]).mean())


@dataclass
class ClipStats:
    """What one clip's masks look like."""

    share: float
    """Mean foreground share of the frames."""
    flicker: float
    """`flicker` of its masks (0: steady)."""
    camera_shift: float | None = None
    """How far the frame moved over the clip, as a share of its shorter side (motion masks only; None otherwise)."""
    camera_zoom: float = 0.0
    camera_reliable: bool = True

    @property
    def flags(self) -> list[str]:
        flags = []
        if self.share < EMPTY_SHARE:
            flags.append("empty")
        elif self.share > FULL_SHARE:
            flags.append("near-full")
        if self.flicker > FLICKER:
            flags.append("flickering")
        if self.camera_moving:
            flags.append("camera moving" + ("" if self.camera_reliable else ", unreliable"))
        return flags

    @property
    def camera_moving(self) -> bool:
        return self.camera_shift is not None and self.camera_shift > CAMERA_SHIFT

    def camera(self) -> str:
        if self.camera_shift is None:
            return "-"
        if not self.camera_moving:
            return "still"
        return f"{self.camera_shift:.0%} shift, {self.camera_zoom:.0%} zoom"


@dataclass
class MaskReport:
    """What masking a set of clips found."""

    clips: int = 0
    computed: int = 0
    """Clips whose masks were computed now (the rest came from the cache)."""
    seconds: float = 0.0
    """Seconds spent computing (decoding included), over `computed` clips."""
    stats: dict[str, ClipStats] = field(default_factory=dict)
    """What the masks of every clip masked look like, by path."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of clips that could not be read."""

    @property
    def shares(self) -> dict[str, float]:
        """Mean foreground share of every clip masked, by path."""
        return {p: s.share for p, s in self.stats.items()}

    @property
    def empty(self) -> list[str]:
        return [p for p, s in self.stats.items() if s.share < EMPTY_SHARE]

    @property
    def full(self) -> list[str]:
        return [p for p, s in self.stats.items() if s.share > FULL_SHARE]

    def flagged(self, flag: str) -> list[str]:
        """The clips with this flag (its first word: 'empty', 'near-full', 'flickering', 'camera')."""
        return [p for p, s in self.stats.items() if any(f.split()[0] == flag for f in s.flags)]

    @property
    def seconds_per_clip(self) -> float:
        return self.seconds / self.computed if self.computed else 0.0

    def summary(self, method: str, per_clip: bool = False) -> str:
        """Lines for the terminal: the totals, every clip's figures (`per_clip`), then every flagged clip with why."""
        stats = list(self.stats.values())
        mean = float(np.mean([s.share for s in stats])) if stats else 0.0
        steady = float(np.mean([s.flicker for s in stats])) if stats else 0.0
        pace = f"{self.seconds_per_clip:.2f} s per clip" if self.computed else "no clip needed computing"
        lines = [f"{method} masks of {self.clips} clips ({self.computed} computed now, {self.clips - self.computed - len(self.failed)} "
                 f"from the cache; {pace}); mean foreground {mean:.1%} of the frame, mean flicker {steady:.2f} "
                 "(1 - IoU of consecutive frames' masks)"]
        if per_clip and stats:
            width = max(len(p) for p in self.stats)
            lines.append(f"  {'clip':{width}s}  foreground  flicker  camera")
            for path, s in self.stats.items():
                flags = f"  <- {'; '.join(s.flags)}" if s.flags else ""
                lines.append(f"  {path:{width}s}  {s.share:10.1%}  {s.flicker:7.2f}  {s.camera()}{flags}")
        for path in self.empty:
            lines.append(f"  empty mask (foreground {self.stats[path].share:.1%}; left out of training): {path}")
        for path in self.full:
            lines.append(f"  mask covers almost everything (foreground {self.stats[path].share:.1%}; hides nothing): {path}")
        for path in self.flagged("flickering"):
            lines.append(f"  mask flickers (flicker {self.stats[path].flicker:.2f}: consecutive masks overlap by "
                         f"{1 - self.stats[path].flicker:.0%}; the model sees a different cut-out each frame): {path}")
        for path in self.flagged("camera"):
            s = self.stats[path]
            if s.camera_reliable:
                lines.append(f"  camera moves ({s.camera()}): frames aligned before the background was taken: {path}")
            else:
                lines.append(f"  camera moves ({s.camera()}) and the alignment is unsure: this mask is unreliable, check it "
                             f"with snapaction mask --preview, or use --mask person: {path}")
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
        notes = masker.grid_notes(path, grid) if masker.masking.method == "motion" else {}
        report.stats[str(path)] = ClipStats(float(masks.mean()), flicker(masks), notes.get("camera_shift"),
                                            notes.get("camera_zoom", 0.0), bool(notes.get("camera_reliable", 1.0)))
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
