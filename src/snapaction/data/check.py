"""Checking a dataset before training: which clips are usable, and what the data looks like.

`usable` probes every clip (headers and first frame) and is what training
runs before it starts. `check` goes further for ``snapaction data check``: it
decodes every frame of every clip to catch truncated and damaged files, hashes
their bytes to find duplicates, and gathers counts and ranges into a
`DataReport`. Both run clips on a thread pool (decoding releases the GIL).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from .cache import content_hash
from ..config import check as check_config
from ..config import option
from ..errors import ClipError, DataError
from .layout import ClipSet, Sample, scan
from ..video import MIN_FRAMES, decode_all, probe

T = TypeVar("T")


@dataclass(frozen=True)
class CheckSettings:
    """What `check` looks for."""

    workers: int = option(0, "clips checked at once, on threads; 0 = one per CPU core, at most 8")
    min_frames: int = option(2, "clips with fewer decodable frames than this are reported as unusable")
    min_clips: int = option(5, "warn about classes with fewer usable clips than this")
    imbalance: float = option(3.0, "warn when the largest class has at least this many times the usable clips of the smallest")
    full_decode: bool = option(True, "decode every frame of every clip to catch truncated or damaged files; --no-full-decode reads only headers and the first frame (faster, misses damaged tails)")

    def __post_init__(self):
        problems = []
        if self.workers < 0:
            problems.append(f"workers must be 0 (automatic) or more, got {self.workers}")
        if self.min_frames < MIN_FRAMES:
            problems.append(f"min_frames must be at least {MIN_FRAMES} (a clip of one frame is a still image), got {self.min_frames}")
        if self.min_clips < 0:
            problems.append(f"min_clips must be 0 or more, got {self.min_clips}")
        if self.imbalance < 1:
            problems.append(f"imbalance must be at least 1, got {self.imbalance}")
        check_config(problems, "data check settings")


@dataclass(frozen=True)
class ClipInfo:
    """A usable clip as `check` saw it."""

    path: Path
    label: str | None
    frames: int
    fps: float
    duration: float
    width: int
    height: int
    sha256: str


@dataclass
class DataReport:
    """Everything ``snapaction data check`` prints; `ok` says whether the data can be trained on."""

    root: Path
    ok: bool
    reason: str
    """One sentence: why the data cannot be used (empty when `ok`)."""
    layout: str = ""
    classes: list[str] = field(default_factory=list)
    clips: list[ClipInfo] = field(default_factory=list)
    unusable: list[tuple[Path, str]] = field(default_factory=list)
    """Clips that failed to decode, with the reason."""
    unusable_per_class: dict[str, int] = field(default_factory=dict)
    """How many of each class's clips are in `unusable`."""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Entries that are not clips at all (from `scan`)."""
    warnings: list[str] = field(default_factory=list)
    notes: list[tuple[Path, str]] = field(default_factory=list)
    """Clips used on a judgement (a file with no extension read by its content, from `scan`)."""

    def counts(self) -> dict[str, int]:
        """Usable clips per class, every class included."""
        counts = {c: 0 for c in self.classes}
        for clip in self.clips:
            if clip.label is not None:
                counts[clip.label] += 1
        return counts

    def format(self) -> str:
        """The report as aligned text; the reason alone when the root could not be scanned."""
        if not self.layout:
            return self.reason
        lines = [f"{self.root}: layout {self.layout!r}, {_count(len(self.classes), 'class', 'classes')}, {_count(len(self.clips), 'usable clip', 'usable clips')}", ""]
        lines += _table(self)
        for title, entries in (("Unusable clips", self.unusable), ("Skipped (not clips)", self.skipped), ("Used by content", self.notes)):
            if entries:
                lines += ["", f"{title} ({len(entries)}):"]
                names = [_relative(p, self.root) for p, _ in entries]
                width = max(map(len, names))
                lines += [f"  {n:<{width}}  {r}" for n, (_, r) in zip(names, entries)]
        if self.warnings:
            lines += ["", "Warnings:"] + [f"  - {w}" for w in self.warnings]
        lines += ["", "Ready to train." if self.ok else f"Cannot train: {self.reason}"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The report as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["root"] = str(self.root)
        out["clips"] = [{**c, "path": str(c["path"])} for c in out["clips"]]
        for key in ("unusable", "skipped", "notes"):
            out[key] = [{"path": str(p), "reason": r} for p, r in out[key]]
        out["counts"] = self.counts()
        return out


def usable(samples: Iterable[Sample], workers: int = 0, min_frames: int = 1) -> tuple[list[Sample], list[tuple[Path, str]]]:
    """Probe every clip: (readable samples in their order, (path, reason) for the rest)."""
    samples = list(samples)

    def one(sample: Sample) -> str | None:
        try:
            info = probe(sample.path)
        except ClipError as err:
            return err.reason
        except Exception as err:  # one odd file must not stop the others
            return _unexpected(err)
        return _too_few(info.num_frames, min_frames)

    reasons = _map(one, samples, workers)
    good = [s for s, r in zip(samples, reasons) if r is None]
    bad = [(s.path, r) for s, r in zip(samples, reasons) if r is not None]
    return good, bad


def check(root: str | Path, settings: CheckSettings | None = None) -> DataReport:
    """Scan `root`, inspect every clip, and say whether it can be trained on (never raises for bad data)."""
    settings = settings or CheckSettings()
    try:
        clipset = scan(root)
    except DataError as err:
        return DataReport(Path(root), ok=False, reason=str(err))
    results = _map(lambda s: _inspect(s, settings), clipset.samples, settings.workers)
    clips: list[ClipInfo] = []
    unusable: list[tuple[Path, str]] = []
    per_class = {c: 0 for c in clipset.classes}
    for sample, result in zip(clipset.samples, results):
        if isinstance(result, ClipInfo):
            clips.append(result)
        else:
            unusable.append((sample.path, result))
            if sample.label is not None:
                per_class[sample.label] += 1
    report = DataReport(clipset.root, True, "", clipset.layout, clipset.classes, clips, unusable, per_class, clipset.skipped,
                        notes=clipset.notes)
    report.warnings = _warnings(report, settings)
    report.ok, report.reason = _verdict(clipset, report)
    return report


def _verdict(clipset: ClipSet, report: DataReport) -> tuple[bool, str]:
    total = len(clipset.samples)
    if not report.clips:
        return False, f"none of the {total} clips found could be decoded; see the reasons listed above."
    if not clipset.classes:
        return False, f"the {len(report.clips)} clips have no labels (layout {clipset.layout!r}); training needs ROOT/<class>/ folders or a manifest with a label column."
    with_clips = [c for c, n in report.counts().items() if n]
    if len(with_clips) < 2:
        return False, f"only one class ({with_clips[0]!r}) has usable clips; training needs at least two classes."
    return True, ""


def _inspect(sample: Sample, settings: CheckSettings) -> ClipInfo | str:
    """A usable clip's facts, or the reason it cannot be used."""
    try:
        info = probe(sample.path)
        frames = info.num_frames
        if settings.full_decode:
            frames = decode_all(sample.path, info)
        reason = _too_few(frames, settings.min_frames)
        if reason:
            return reason
        digest = content_hash(sample.path)
    except Exception as err:  # one odd file must not stop the others
        return failure_reason(sample.path, err)
    return ClipInfo(sample.path, sample.label, frames, info.fps, info.duration, info.width, info.height, digest)


def failure_reason(path: Path, err: Exception) -> str:
    """Why a clip that raised `err` while being read cannot be used, in the words the data check reports."""
    if isinstance(err, ClipError):
        return err.reason  # worded where clips are read (snapaction.video), so every command says the same
    if isinstance(err, OSError):
        return f"unreadable ({err.strerror or err})"
    return _unexpected(err)


def _unexpected(err: Exception) -> str:
    return f"could not be read ({type(err).__name__}: {err})"


def _too_few(frames: int, min_frames: int) -> str | None:
    if frames < min_frames:
        return f"too few frames: {frames} (at least {min_frames} needed)"
    return None


def _warnings(report: DataReport, settings: CheckSettings) -> list[str]:
    warnings = []
    counts = {c: n for c, n in report.counts().items() if n}
    if len(counts) >= 2:
        big, small = max(counts, key=counts.get), min(counts, key=counts.get)
        ratio = counts[big] / counts[small]
        if ratio >= settings.imbalance:
            warnings.append(
                f"class imbalance: {big!r} has {counts[big]} usable clips, {small!r} only {counts[small]} "
                f"({ratio:.1f}x); collect more clips of the small classes or expect the model to favour {big!r}"
            )
    single = [c for c, n in report.counts().items() if n == 1]
    if single:
        warnings.append(f"{_count(len(single), 'class has', 'classes have')} one usable clip ({', '.join(map(repr, single))}): "
                        "it goes to training, so validation says nothing about that class; record more clips of it")
    few = [f"{c!r} ({n})" for c, n in report.counts().items() if n < settings.min_clips]
    if few:
        warnings.append(f"classes with fewer than {settings.min_clips} usable clips: {', '.join(few)}; a few dozen per class work best")
    by_hash: dict[str, list[ClipInfo]] = {}
    for clip in report.clips:
        by_hash.setdefault(clip.sha256, []).append(clip)
    for same in by_hash.values():
        if len(same) > 1:
            labels = {c.label for c in same}
            across = f" across classes {sorted(map(str, labels))}" if len(labels) > 1 else ""
            names = ", ".join(_relative(c.path, report.root) for c in same)
            warnings.append(f"byte-identical duplicates{across}: {names}; keep one, or they may land on both sides of the split")
    return warnings


_TOTAL = "(total)"


def _table(report: DataReport) -> list[str]:
    """One aligned row per class (and one for all clips): counts and ranges."""
    keys: list[str | None] = list(report.classes) or [None]
    rows = [("class", "clips", "unusable", "frames", "seconds", "fps", "size")]
    for key in keys + [_TOTAL]:
        clips = report.clips if key is _TOTAL else [c for c in report.clips if c.label == key]
        bad = len(report.unusable) if key is _TOTAL or key is None else report.unusable_per_class.get(key, 0)
        rows.append((
            "(unlabeled)" if key is None else key, str(len(clips)), str(bad),
            _span([c.frames for c in clips], "{}"), _span([c.duration for c in clips], "{:.1f}"),
            _span([c.fps for c in clips], "{:.3g}"), _sizes(clips),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    align = ["<", ">", ">", ">", ">", ">", ">"]
    return ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip() for row in rows]


def _span(values: list, fmt: str) -> str:
    if not values:
        return "-"
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def _sizes(clips: list[ClipInfo]) -> str:
    if not clips:
        return "-"
    sizes = sorted({(c.width, c.height) for c in clips}, key=lambda wh: (wh[0] * wh[1], wh))
    lo, hi = (f"{w}x{h}" for w, h in (sizes[0], sizes[-1]))
    return lo if len(sizes) == 1 else f"{lo}..{hi} ({len(sizes)} sizes)"


def _relative(path: Path, root: Path) -> str:
    base = root.parent if root.is_file() else root
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _map(fn: Callable[[Sample], T], samples: list[Sample], workers: int, what: str = "clips checked") -> list[T]:
    """`fn` over `samples` on a thread pool, results in input order, with a progress bar (on stderr) past a few clips."""
    from tqdm.auto import tqdm

    workers = workers or min(8, os.cpu_count() or 1)
    with tqdm(total=len(samples), desc=what, unit="clip", leave=False, disable=len(samples) < 8) as bar:
        def counted(sample: Sample) -> T:
            try:
                return fn(sample)
            finally:
                bar.update()

        if workers == 1 or len(samples) <= 1:
            return [counted(s) for s in samples]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(counted, samples))


def _count(n: int, one: str, many: str) -> str:
    """'1 class', '2 classes'."""
    return f"{n} {one if n == 1 else many}"
