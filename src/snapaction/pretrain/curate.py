"""Curating unlabeled footage for pretraining: which clips to keep, and why each other one is left out.

Every entry found under the folder (`snapaction.data.layout.walk`, at any depth)
is either kept or listed with a reason, one of `REASONS`:

- ``not_a_clip``: found but not a clip (the layout's sentence: extension, pipe, link loop...);
- ``unreadable``: the reader's sentence (`ClipError`);
- ``too_short``: fewer than `min_frames` frames (a cut segment too);
- ``duplicate``: the same bytes as a clip found before it (natural order), which is named;
- ``static``: almost nothing moves (`STATIC_THRESHOLD`);
- ``near_duplicate``: looks like a kept clip of another video at every sampled moment
  (perceptual hashes within `NEAR_DUPLICATE_BITS`), which is named.

A clip is judged from `SIGNATURE_FRAMES` frames decoded at short side
`SIGNATURE_SIZE`, in a pool of processes. With `cut_seconds`, a longer video is
judged as consecutive segments, each its own clip.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

from ..config import check
from ..data.sampling import uniform_indices
from ..video import MIN_FRAMES

SIGNATURE_FRAMES = 8
"""Frames decoded per clip (or segment) to judge it: spread evenly over it."""
SIGNATURE_SIZE = 64
"""Short side, in pixels, of the frames a clip is judged from."""
HASHED_FRAMES = 4
"""Of those, how many (evenly spread) get a perceptual hash for the near-duplicate check."""

STATIC_THRESHOLD = 1.0
"""A clip whose sampled frames change by less than this count as static: grey levels (0-255) at the 99th
percentile of pixels, median over consecutive sampled frames, at short side 64 (see `motion`). Measured
(bench/curate_demo.py): one frame repeated and H.264-encoded scores 0.00; the demo clips 5.4 and up; the
real clips of people 3.4 and up (drink_water.avi, one person drinking in a still room, whose mean change
over the whole frame is only 0.36: the percentile sees a small mover that a mean dilutes)."""
NEAR_DUPLICATE_BITS = 10
"""Two clips whose sampled frames' 64-bit DCT hashes all differ in at most this many bits are near
duplicates. Measured (bench/curate_demo.py): re-encoded, brightened or slightly cropped (2 px) copies differ
in 2-8 bits; the closest two of 120 distinct demo clips in 14 at some frame, distinct real clips in 26."""

REASONS = {
    "not_a_clip": "not a clip",
    "unreadable": "unreadable",
    "too_short": "too short",
    "duplicate": "byte-identical duplicate",
    "static": "static (almost no motion)",
    "near_duplicate": "near duplicate",
}
"""Why a clip is left out: kind -> heading of the report."""


@dataclass(frozen=True)
class CuratedClip:
    """A kept clip, or one segment of a cut video: frames ``first .. first + frames - 1`` of `path`."""

    path: Path
    start: float
    """Seconds from the start of the video."""
    end: float | None
    """Seconds; None for a whole clip that was not cut."""
    first: int
    """Index of its first frame in the video."""
    frames: int
    fps: float
    digest: str = ""
    """SHA-256 of the file's bytes (of a frame folder's frames)."""

    @property
    def name(self) -> str:
        """The path, with the seconds of a segment: ``talk.mp4 [10.0-20.0 s]``."""
        return str(self.path) if self.end is None else f"{self.path} [{self.start:.1f}-{self.end:.1f} s]"

    def indices(self, n: int) -> np.ndarray:
        """`n` frame indices of the video spread evenly over this clip (``int64 (n,)``)."""
        return self.first + uniform_indices(self.frames, n)

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


class LeftOut(NamedTuple):
    """A clip (or segment, or entry that is not a clip) left out: what, the kind of reason (a key of `REASONS`), and why."""

    what: str
    kind: str
    reason: str


@dataclass
class Curation:
    """What `curate` kept and left out under `root`."""

    root: Path
    kept: list[CuratedClip]
    left_out: list[LeftOut]
    settings: dict
    notes: list[tuple[str, str]] = field(default_factory=list)
    """Clips kept on a judgement the user should hear of (a file with no extension read by its content)."""
    seconds: float = 0.0
    clips_judged: int = 0

    def counts(self) -> dict[str, int]:
        """``kept`` and each kind of `REASONS` -> how many."""
        counts = {"kept": len(self.kept), **{kind: 0 for kind in REASONS}}
        for item in self.left_out:
            counts[item.kind] += 1
        return counts

    def report(self) -> str:
        """A table of counts per reason, then every left-out entry with its reason."""
        counts = self.counts()
        pace = f"{1000 * self.seconds / max(1, self.clips_judged):.0f} ms per clip" if self.clips_judged else "nothing decoded"
        lines = [f"curated {self.root}: {counts['kept']} clips kept, {len(self.left_out)} left out ({self.seconds:.1f} s, {pace})",
                 f"  {'kept':<28}{counts['kept']:>6}"]
        lines += [f"  {heading:<28}{counts[kind]:>6}" for kind, heading in REASONS.items() if counts[kind]]
        if self.left_out:
            lines.append("left out:")
            lines += [f"  {item.what}: {REASONS[item.kind]}: {item.reason}" for item in self.left_out]
        lines += [f"  note: {what} {note}" for what, note in self.notes]
        return "\n".join(lines[:1] + [line.replace(f"{self.root}/", "") for line in lines[1:]])  # paths under the root, shorter

    def to_dict(self) -> dict:
        return {
            "root": str(self.root), "settings": self.settings, "counts": self.counts(), "seconds": round(self.seconds, 3),
            "kept": [clip.to_dict() for clip in self.kept],
            "left_out": [item._asdict() for item in self.left_out],
            "notes": [{"what": what, "note": note} for what, note in self.notes],
        }


def curate(
    root: str | Path,
    *,
    cut_seconds: float | None = None,
    min_frames: int = 16,
    static_threshold: float = STATIC_THRESHOLD,
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
    workers: int | None = None,
    progress: bool = True,
) -> Curation:
    """Judge every clip under `root` (a folder at any depth, one video, or a CSV manifest) for pretraining.

    Keeps the first of byte-identical and near-duplicate clips (in natural order)
    and leaves out unreadable, too short and static ones, each listed with its
    reason (see the module's docstring). With `cut_seconds`, a video longer than
    that is judged as consecutive segments of that length (the last one shorter).
    `workers` processes decode in parallel (default: one per CPU core, at most 8).
    """
    from ..data.layout import walk

    problems = []
    if cut_seconds is not None and not cut_seconds > 0:
        problems.append(f"cut_seconds must be above 0 (or left out to keep videos whole), got {cut_seconds!r}")
    if min_frames < MIN_FRAMES:
        problems.append(f"min_frames must be at least {MIN_FRAMES}, got {min_frames!r}")
    if not static_threshold >= 0:
        problems.append(f"static_threshold must be 0 or more grey levels, got {static_threshold!r}")
    if not 0 <= near_duplicate_bits < 64:
        problems.append(f"near_duplicate_bits must be between 0 and 63 (of 64 hash bits), got {near_duplicate_bits!r}")
    if workers is not None and workers < 1:
        problems.append(f"workers must be at least 1, got {workers!r}; leave it out to use one per CPU core")
    check(problems, "curation settings")

    started = time.perf_counter()
    found = walk(root)
    settings = {"cut_seconds": cut_seconds, "min_frames": min_frames, "static_threshold": static_threshold,
                "near_duplicate_bits": near_duplicate_bits}
    curation = Curation(found.root, [], [], settings, [(str(p), note) for p, note in found.notes])
    curation.left_out += [LeftOut(str(p), "not_a_clip", "hidden (its name starts with a dot)" if r == "hidden" else r)
                          for p, r in found.skipped]
    jobs = [(sample.path, cut_seconds, min_frames) for sample in found.samples]
    first_with: dict[str, Path] = {}
    hashes = _HashIndex(near_duplicate_bits)
    for judged in in_pool(_judge, jobs, workers, progress, "clips curated"):
        path = judged["path"]
        if "error" in judged:
            curation.left_out.append(LeftOut(str(path), "unreadable", judged["error"]))
            continue
        if judged["digest"] in first_with:
            curation.left_out.append(LeftOut(str(path), "duplicate", f"the same bytes as {first_with[judged['digest']]}, which is kept"))
            continue
        first_with[judged["digest"]] = path
        for first, frames, start, end, signature, motion in judged["segments"]:
            clip = CuratedClip(path, start, end, first, frames, judged["fps"], judged["digest"])
            if signature is None:
                curation.left_out.append(LeftOut(clip.name, "too_short", f"{frames} frames, fewer than the {min_frames} asked for"))
            elif motion < static_threshold:
                curation.left_out.append(LeftOut(clip.name, "static", f"its frames change by {motion:.2f} grey levels, below "
                                                                       f"the static threshold of {static_threshold}"))
            elif (twin := hashes.match(signature, source=len(first_with))) is not None:
                index, bits = twin
                curation.left_out.append(LeftOut(clip.name, "near_duplicate", f"looks like {curation.kept[index].name}, which is kept "
                                                                               f"(sampled frames differ in at most {bits} of 64 hash bits)"))
            else:
                hashes.add(signature, source=len(first_with))
                curation.kept.append(clip)
    curation.seconds = time.perf_counter() - started
    curation.clips_judged = len(jobs)
    return curation


def in_pool(fn: Callable, jobs: list, workers: int | None, progress: bool, what: str) -> Iterator:
    """`fn` over `jobs`, results in order, on `workers` processes (default: one per CPU core, at most 8), with a progress bar."""
    from tqdm.auto import tqdm

    from ..engines.cpu import usable_cores

    workers = max(1, min(len(jobs), workers or min(8, usable_cores())))
    with tqdm(total=len(jobs), desc=what, unit="clip", leave=False, disable=not progress or len(jobs) < 8) as bar:
        if workers == 1:
            results: Iterable = map(fn, jobs)
            for result in results:
                bar.update()
                yield result
            return
        with ProcessPoolExecutor(workers) as pool:
            for result in pool.map(fn, jobs, chunksize=max(1, min(16, len(jobs) // (8 * workers)))):
                bar.update()
                yield result


# --- judging one clip (in a worker process) ----------------------------------------


def _judge(job: tuple[Path, float | None, int]) -> dict:
    """Probe, hash and sample one clip: its digest and, per segment, (first, frames, start, end, hashes or None, motion)."""
    from ..data.cache import content_hash
    from ..data.check import failure_reason
    from ..video import probe, read_frames

    path, cut_seconds, min_frames = job
    try:
        info = probe(path)
        digest = content_hash(path)
        segments = _segments(info.num_frames, info.fps, cut_seconds)
        picks = [first + uniform_indices(frames, min(SIGNATURE_FRAMES, frames)) for first, frames in segments if frames >= min_frames]
        small = read_frames(path, np.concatenate(picks), size=SIGNATURE_SIZE, info=info) if picks else None
    except Exception as err:  # one odd file must not stop the others
        return {"path": path, "error": failure_reason(path, err)}
    out = []
    at = 0
    for first, frames in segments:
        start, end = first / info.fps, (first + frames) / info.fps
        if cut_seconds is None or len(segments) == 1 and frames == info.num_frames:
            end = None
        if frames < min_frames:
            out.append((first, frames, start, end, None, 0.0))
            continue
        grey = small[at : at + min(SIGNATURE_FRAMES, frames)].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])  # (T, H, W)
        at += len(grey)
        out.append((first, frames, start, end, frame_hashes(grey), motion(grey)))
    return {"path": path, "digest": digest, "fps": info.fps, "segments": out}


def _segments(num_frames: int, fps: float, cut_seconds: float | None) -> list[tuple[int, int]]:
    """(first frame, frames) of each consecutive segment of `cut_seconds`; the whole clip when it is not longer."""
    if cut_seconds is None or num_frames <= cut_seconds * fps:
        return [(0, num_frames)]
    bounds = sorted({min(num_frames, round(k * cut_seconds * fps)) for k in range(int(np.ceil(num_frames / (cut_seconds * fps))) + 1)})
    return [(a, b - a) for a, b in zip(bounds, bounds[1:]) if b > a]


def motion(grey: np.ndarray) -> float:
    """How much a clip moves, from ``float32 (T, H, W)`` grey frames (0-255): the median over consecutive frames
    of the 99th percentile of their absolute difference, so a small mover in a still scene counts as motion."""
    if len(grey) < 2:
        return 0.0
    change = np.abs(np.diff(grey, axis=0)).reshape(len(grey) - 1, -1)
    return float(np.median(np.percentile(change, 99, axis=1)))


def frame_hashes(grey: np.ndarray) -> np.ndarray:
    """64-bit DCT perceptual hashes (pHash) of `HASHED_FRAMES` frames spread over ``float32 (T, H, W)`` -> ``uint64 (HASHED_FRAMES,)``.

    Each frame is shrunk to 32x32; bit ``i`` says whether the ``i``-th of the 8x8
    lowest-frequency DCT coefficients is above their median (the constant term left
    out), so brightness, contrast and small crops or re-encoding barely move it.
    """
    from PIL import Image

    picks = np.linspace(0, len(grey) - 1, HASHED_FRAMES).round().astype(int)
    out = np.empty(HASHED_FRAMES, np.uint64)
    for k, i in enumerate(picks):
        tiny = np.asarray(Image.fromarray(grey[i]).resize((32, 32), Image.BOX), np.float64)
        low = (_DCT @ tiny @ _DCT.T)[:8, :8].ravel()
        out[k] = np.packbits(low > np.median(low[1:])).view(">u8")[0]
    return out


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II: ``D @ x`` transforms the columns of `x`."""
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    d[0] /= np.sqrt(2)
    return d


_DCT = _dct_matrix(32)
_BITS = np.array([bin(i).count("1") for i in range(256)], np.uint8)


class _HashIndex:
    """The hashes of kept clips, searched for one whose every frame is within `bits` of a new clip's.

    Segments cut from one video (one `source`) are never each other's near duplicates: a still camera
    would make every later segment look like the first, and they are different moments by construction.
    """

    def __init__(self, bits: int):
        self.bits = bits
        self.rows = np.empty((64, HASHED_FRAMES), np.uint64)
        self.sources = np.empty(64, np.int64)
        self.size = 0

    def match(self, signature: np.ndarray, source: int) -> tuple[int, int] | None:
        """(index of the first kept clip of another source within `bits` at every frame, the most bits it differs in) or None."""
        if not self.size:
            return None
        differ = _BITS[(self.rows[: self.size] ^ signature).view(np.uint8)].reshape(self.size, HASHED_FRAMES, 8).sum(-1).max(-1)
        close = np.flatnonzero((differ <= self.bits) & (self.sources[: self.size] != source))
        return (int(close[0]), int(differ[close[0]])) if len(close) else None

    def add(self, signature: np.ndarray, source: int) -> None:
        if self.size == len(self.rows):
            self.rows = np.concatenate([self.rows, np.empty_like(self.rows)])
            self.sources = np.concatenate([self.sources, np.empty_like(self.sources)])
        self.rows[self.size], self.sources[self.size] = signature, source
        self.size += 1
