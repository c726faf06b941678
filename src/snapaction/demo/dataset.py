"""The synthetic demo dataset on disk: OUT/{train,test}/<class>/<class>_NNN.mp4.

Four classes in two time-reversed pairs ("pick"/"drop", "open"/"close"); what
the clips look like and why is in `snapaction.demo.clips`, which renders them.
Here they are written as H.264 (libx264, yuv420p), train and test from separate
seed streams, with a marker file listing what was written so that a rewrite
only ever removes SnapAction's own files.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..config import check, option, to_dict
from .clips import CLASSES, render_clip
from ..engines.cpu import usable_cores
from ..errors import ConfigError, DataError
from ..files import building

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
MARKER = "snapaction-demo.json"
"""File at the top of a demo dataset listing the clips SnapAction wrote there."""


# --- writing the dataset -------------------------------------------------------


@dataclass(frozen=True)
class DemoSpec:
    """What `write_demo_dataset` writes; the same spec and seed always give the same clips."""

    clips_per_class: int = option(40, "training clips per class")
    test_clips_per_class: int = option(25, "held-out test clips per class, drawn from their own seed stream")
    size: int = option(96, "width and height of every clip in pixels (even, at least 32)")
    num_frames: int = option(32, "frames per clip")
    fps: int = option(16, "frames per second (a clip lasts num_frames / fps seconds)")
    seed: int = option(0, "random seed: the same seed writes the same clips")

    def __post_init__(self):
        problems = []
        for name in ("clips_per_class", "test_clips_per_class", "fps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.size < 32 or self.size % 2:
            problems.append(f"size must be an even number of pixels, at least 32 (H.264 yuv420p), got {self.size!r}")
        if self.num_frames < 8:
            problems.append(f"num_frames must be at least 8 so the motion shows, got {self.num_frames!r}")
        if self.seed < 0:
            problems.append(f"seed must be zero or positive, got {self.seed!r}")
        check(problems, "demo dataset options")

    def counts(self) -> dict[str, dict[str, int]]:
        per_class = {"train": self.clips_per_class, "test": self.test_clips_per_class}
        return {split: {kind: per_class[split] for kind in CLASSES} for split in SPLITS}


@dataclass(frozen=True)
class DemoDataset:
    """A written demo dataset: ``root/<split>/<class>/<class>_NNN.mp4``."""

    root: Path
    train_dir: Path
    test_dir: Path
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    """split -> class -> clips."""


def clip_rng(seed: int, split: str, kind: str, index: int) -> np.random.Generator:
    """The generator behind one clip of the dataset: its own stream per split, class and index."""
    key = (SPLITS.index(split), CLASSES.index(kind), index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def write_demo_dataset(
    out: str | Path,
    clips_per_class: int = DemoSpec.clips_per_class,
    test_clips_per_class: int = DemoSpec.test_clips_per_class,
    size: int = DemoSpec.size,
    num_frames: int = DemoSpec.num_frames,
    fps: int = DemoSpec.fps,
    seed: int = DemoSpec.seed,
    workers: int | None = None,
) -> DemoDataset:
    """Write the demo dataset to `out` (train and test splits) and describe it.

    `out` must be missing, empty, or a demo dataset written before (its clips
    are then replaced, or kept as they are when it was written whole with the
    same settings and version, so a rerun encodes nothing). A new dataset is
    written beside the old one, which it replaces only once complete. Any
    other content raises `DataError` and nothing is touched. `workers`
    processes encode clips in parallel (default: one per CPU core, at most 8).
    """
    spec = DemoSpec(clips_per_class, test_clips_per_class, size, num_frames, fps, seed)
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers!r}; leave it out to use one per CPU core")
    root = Path(out)
    if _already_written(root, spec):
        log.info("reusing the demo clips already in %s (same settings, every clip complete)", root)
        return DemoDataset(root, root / "train", root / "test", CLASSES, spec.counts())
    if _holds_previous(root):  # written beside it and swapped in whole: a stop midway leaves the previous clips as they were
        with building(root) as new:
            _write_all(new, spec, workers)
    else:
        _write_all(root, spec, workers)
    return DemoDataset(root, root / "train", root / "test", CLASSES, spec.counts())


def _write_all(root: Path, spec: DemoSpec, workers: int | None) -> None:
    """Write every clip of `spec` into `root` (missing or empty), the marker first and again, complete, last."""
    jobs = [
        (str(root / split / kind / f"{kind}_{i:03d}.mp4"), split, kind, i, spec)
        for split, per_class in spec.counts().items()
        for kind, count in per_class.items()
        for i in range(count)
    ]
    root.mkdir(parents=True, exist_ok=True)
    marker = {
        "snapaction": __version__,
        "what": "synthetic demo dataset written by `snapaction demo-data`",
        "spec": to_dict(spec),
        "complete": False,
        "files": [Path(path).relative_to(root).as_posix() for path, *_ in jobs],
    }
    _write_marker(root, marker)  # first, so an interrupted run can be written over
    for split in SPLITS:
        for kind in CLASSES:
            (root / split / kind).mkdir(parents=True, exist_ok=True)
    workers = min(len(jobs), workers if workers is not None else min(8, usable_cores()))
    log.info("writing %d demo clips to %s with %d worker(s)", len(jobs), root, workers)
    from tqdm.auto import tqdm

    with tqdm(total=len(jobs), desc="demo clips written", unit="clip", leave=False) as bar:
        if workers == 1:
            for job in jobs:
                _write_one(job)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // (8 * workers))):
                    bar.update()
    marker["complete"] = True
    _write_marker(root, marker)


def x264_options() -> dict[str, str]:
    """libx264's options for the demo clips: the same bytes for the same frames on every CPU, run after run.

    x264 picks its assembly kernels from the CPU. Its AVX-512 kernels (chosen on CPUs with AVX-512) do not give
    the same bytes twice for the same frames, and its AVX2 kernels round the macroblock-tree's float arithmetic
    differently (FMA), so clips decoded up to 35 grey levels apart from one machine, or one run, to the next.
    SSE2, which every x86-64 CPU has, writes exactly what x264's plain C writes, and as fast here; elsewhere
    (ARM) the plain C runs.
    """
    kernels = "SSE2" if platform.machine().lower() in ("x86_64", "amd64") else "0"
    return {"crf": "20", "preset": "veryfast", "threads": "1", "x264-params": f"asm={kernels}"}


def write_clip(path: str | Path, frames: np.ndarray, fps: int) -> Path:
    """Encode ``uint8 (T, H, W, C)`` frames as H.264 (libx264, yuv420p); written whole or not at all."""
    import av

    path = Path(path)
    part = path.with_name(path.name + ".part")
    with av.open(str(part), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options=x264_options())
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    os.replace(part, path)
    return path


def _write_one(job) -> str:
    path, split, kind, index, spec = job
    frames = render_clip(kind, clip_rng(spec.seed, split, kind, index), spec.size, spec.num_frames)
    write_clip(path, frames, spec.fps)
    return path


def _write_marker(root: Path, marker: dict) -> None:
    tmp = root / (MARKER + ".part")
    tmp.write_text(json.dumps(marker, indent=1) + "\n")
    os.replace(tmp, root / MARKER)


def _already_written(root: Path, spec) -> bool:
    """True when `root` holds a complete demo dataset written by this version with `spec`, every clip present."""
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    same = marker.get("complete") and marker.get("spec") == to_dict(spec) and marker.get("snapaction") == __version__
    if not same:
        return False
    folders = {root / split for split in SPLITS} | {root / split / kind for split in SPLITS for kind in CLASSES}
    listed = {root / name for name in marker.get("files", [])}
    found = {p for p in root.rglob("*") if p != root / MARKER and not (p in folders and p.is_dir())}
    return found == listed and all(p.is_file() for p in listed)  # nothing missing, nothing anyone else put there


def _holds_previous(root: Path) -> bool:
    """True when `root` holds a previous demo dataset (which the new one replaces whole), False when it is
    missing or empty. Anything else there (a file, files SnapAction did not write) raises `DataError`, and
    nothing is touched.
    """
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; choose a folder for the demo dataset")
    if not root.exists() or not any(root.iterdir()):
        return False
    try:
        listed = json.loads((root / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(
            f"{root} is not empty and is not a SnapAction demo dataset (no readable {MARKER}); "
            "choose a new or empty folder, SnapAction will not write over other files"
        ) from None
    ours = {root / MARKER, root / (MARKER + ".part")}
    for name in listed:
        ours |= {root / name, root / (name + ".part")}
    folders = {root / split for split in SPLITS} | {root / split / kind for split in SPLITS for kind in CLASSES}
    files = [p for p in sorted(root.rglob("*")) if not (p in folders and p.is_dir())]
    foreign = [p for p in files if p not in ours]
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DataError(
            f"{root} holds a demo dataset but also files SnapAction did not write ({shown}); "
            "move them out or choose another folder, SnapAction will not delete them"
        )
    return True
