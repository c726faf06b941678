"""WebDataset-style tar shards of curated clips, and the stream that reads them back for pretraining.

``OUT/shard-000000.tar``, ... hold one sample per kept clip (or cut segment):
``KEY.json`` (source path, start, end, fps, frame indices) and ``KEY.00.jpg`` ...,
its `num_frames` frames spread evenly over it at short side `size`, as JPEG.
Every shard holds `clips_per_shard` samples but the last. ``OUT/manifest.json``,
written last, lists the shards: a folder without it is unfinished. This module
alone writes and reads the folder.

`ShardStream` gives each process of a distributed run (and each DataLoader
worker in it) its own shards, in an order shuffled per epoch alike on every
rank, so that every clip is seen exactly once per epoch across all of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import torch

from .. import __version__
from ..config import check
from ..errors import ConfigError, DataError
from ..files import atomic_json, atomic_write, building
from .curate import NEAR_DUPLICATE_BITS, STATIC_THRESHOLD, CuratedClip, Curation, curate, in_pool

log = logging.getLogger(__name__)

FORMAT = "snapaction-shards"
FORMAT_VERSION = 1
"""Bump when what a shard holds changes; a folder of another version is written again."""
MANIFEST = "manifest.json"
JPEG_QUALITY = 90
_OURS = re.compile(r"shard-\d{6}\.tar|manifest\.json|\.(shard-\d{6}\.tar|manifest\.json)\..+\.tmp")


class Shard(NamedTuple):
    name: str
    samples: int
    bytes: int


@dataclass(frozen=True)
class ShardManifest:
    """A finished folder of shards, as its ``manifest.json`` describes it."""

    folder: Path
    shards: list[Shard]
    num_frames: int
    size: int
    """Short side of the stored frames, in pixels."""
    clips_per_shard: int
    fingerprint: str
    """Hash of the settings and of every clip's content: a rerun with the same ones writes nothing."""
    skipped: list[dict] = field(default_factory=list)
    """Clips that could not be read while writing: ``{"clip": ..., "reason": ...}``."""
    curation: dict | None = None
    """The curation's counts and left-out list, when the shards were written from a `Curation`."""
    snapaction: str = __version__

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    def paths(self) -> list[Path]:
        return [self.folder / s.name for s in self.shards]

    def summary(self) -> str:
        """One line (and one per clip skipped while writing): clips, shards, size on disk."""
        lines = [f"{self.samples} clips of {self.num_frames} frames (short side {self.size} px) in {len(self.shards)} shards, "
                 f"{self.bytes / 1e6:.1f} MB, in {self.folder}"]
        lines += [f"  skipped while writing: {s['clip']}: {s['reason']}" for s in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "snapaction": self.snapaction,
            "num_frames": self.num_frames, "size": self.size, "clips_per_shard": self.clips_per_shard,
            "samples": self.samples, "fingerprint": self.fingerprint,
            "shards": [s._asdict() for s in self.shards], "skipped": self.skipped, "curation": self.curation,
        }


def shard_unlabeled(
    unlabeled: str | Path,
    out: str | Path,
    *,
    num_frames: int = 16,
    size: int = 128,
    clips_per_shard: int = 64,
    cut_seconds: float | None = None,
    min_frames: int = 16,
    static_threshold: float = STATIC_THRESHOLD,
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
    dry_run: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[Curation, ShardManifest | None]:
    """``snapaction shard``: `curate` the footage under `unlabeled` (see there for the thresholds), then
    `write_shards` of the clips it keeps into `out` (not with `dry_run`)."""
    _check_settings(num_frames, size, clips_per_shard)
    curated = curate(unlabeled, cut_seconds=cut_seconds, min_frames=min_frames, static_threshold=static_threshold,
                     near_duplicate_bits=near_duplicate_bits, workers=workers, progress=progress)
    if dry_run:
        return curated, None
    return curated, write_shards(curated, out, num_frames=num_frames, size=size, clips_per_shard=clips_per_shard,
                                 workers=workers, progress=progress)


def write_shards(
    clips: Curation | Iterable[CuratedClip],
    out: str | Path,
    *,
    num_frames: int = 16,
    size: int = 128,
    clips_per_shard: int = 64,
    workers: int | None = None,
    progress: bool = True,
) -> ShardManifest:
    """Write the clips a `Curation` kept (or any `CuratedClip`s) as tar shards in `out`, the manifest last.

    A clip that cannot be read now is reported, skipped and listed in the
    manifest; the rest go on. When `out` already holds shards of the same clips
    (same content) and settings, nothing is written. `out` must be new, empty,
    or a folder of shards written before: other files stop the run untouched.
    """
    _check_settings(num_frames, size, clips_per_shard)
    curation = clips if isinstance(clips, Curation) else None
    clips = list(curation.kept if curation else clips)
    out = Path(out)
    if not clips:
        raise DataError(f"no clips to shard{f' under {curation.root}' if curation else ''}; see the curation report for why each was left out.")
    fingerprint = _fingerprint(clips, num_frames, size, clips_per_shard)
    done = _finished(out, fingerprint)
    if done:
        log.info("the shards in %s already hold these clips with these settings; nothing to write", out)
        return done
    # Into `out` when it is new or empty; beside it when it holds shards written before, which the new ones
    # replace only once all are written (a stop midway leaves the earlier shards and their manifest as they were).
    with (building(out) if _prepare(out) else contextlib.nullcontext(out)) as where:
        where.mkdir(parents=True, exist_ok=True)
        shards: list[Shard] = []
        skipped: list[dict] = []
        pending: list[list[tuple[str, bytes]]] = []
        jobs = [(i, clip, num_frames, size) for i, clip in enumerate(clips)]
        for clip, sample in zip(clips, in_pool(_encode, jobs, workers, progress, "clips sharded")):
            if isinstance(sample, str):
                log.warning("cannot use clip %s: %s; skipped", clip.name, sample)
                skipped.append({"clip": clip.name, "reason": sample})
                continue
            pending.append(sample)
            if len(pending) == clips_per_shard:
                shards.append(_write_tar(where, len(shards), pending))
                pending = []
        if pending:
            shards.append(_write_tar(where, len(shards), pending))
        if not shards:
            raise DataError(f"none of the {len(clips)} clips could be read while writing shards ({skipped[0]['clip']}: {skipped[0]['reason']}).")
        counts = {"counts": curation.counts(), "left_out": [item._asdict() for item in curation.left_out]} if curation else None
        manifest = ShardManifest(out, shards, num_frames, size, clips_per_shard, fingerprint, skipped, counts)
        atomic_json(where / MANIFEST, manifest.to_dict())
    return manifest


def open_shards(folder: str | Path) -> ShardManifest:
    """The manifest of a finished folder of shards; `DataError` in one sentence, saying how to fix it, when it is not one."""
    folder = Path(folder)
    rerun = f"run `snapaction shard UNLABELED --out {folder}`"
    if not folder.exists():
        raise DataError(f"{folder} does not exist; {rerun} first.")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder of shards; pass the folder that `snapaction shard --out` wrote.")
    path = folder / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder} holds no {MANIFEST}, so it is not a finished folder of shards (or writing it was interrupted); {rerun} first.")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise DataError(f"{path} is not a manifest of SnapAction shards; {rerun} to write them.")
        if data.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{folder} holds shards of format version {data.get('format_version')!r}, and this SnapAction "
                            f"reads version {FORMAT_VERSION}; {rerun} to write them again.")
        manifest = ShardManifest(folder, [Shard(s["name"], int(s["samples"]), int(s["bytes"])) for s in data["shards"]],
                                 int(data["num_frames"]), int(data["size"]), int(data["clips_per_shard"]), data["fingerprint"],
                                 list(data.get("skipped", [])), data.get("curation"), data.get("snapaction", "?"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(f"cannot read {path} ({type(err).__name__}: {err}); {rerun} to write it again.") from None
    missing = [s.name for s in manifest.shards if not (folder / s.name).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {len(missing)} of its {len(manifest.shards)} shards ({', '.join(missing[:3])}"
                        f"{', ...' if len(missing) > 3 else ''}); {rerun} to write them again.")
    return manifest


def read_shard(path: Path) -> Iterator[tuple[str, dict, np.ndarray]]:
    """The samples of one shard in order: (key, its JSON, frames ``uint8 (T, H, W, 3)``)."""
    from PIL import Image

    def sample(key: str, members: dict[str, bytes]) -> tuple[str, dict, np.ndarray]:
        frames = sorted((int(name.split(".")[0]), data) for name, data in members.items() if name.endswith(".jpg"))
        images = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for _, data in frames]
        return key, json.loads(members["json"]), np.stack(images)  # (T, H, W, 3)

    try:
        with tarfile.open(path, "r|") as tar:
            key, members = None, {}
            for member in tar:
                if not member.isfile():
                    continue
                name, _, rest = member.name.partition(".")
                if key is not None and name != key:
                    yield sample(key, members)
                    members = {}
                key = name
                members[rest] = tar.extractfile(member).read()
            if key is not None:
                yield sample(key, members)
    except (tarfile.TarError, OSError, KeyError, ValueError) as err:
        raise DataError(f"shard {path} is damaged ({type(err).__name__}: {err}); run `snapaction shard UNLABELED --out "
                        f"{path.parent}` again to rewrite it.") from None


class ShardStream(torch.utils.data.IterableDataset):
    """The samples of this process's shards, shuffled: ``uint8 (T, H, W, 3)`` tensors (``(key, tensor)`` with `with_keys`).

    Each epoch the shard order is shuffled with (`seed`, epoch), alike on every
    rank; shard ``i`` of that order goes to rank ``i % world_size``, and within a
    rank to DataLoader worker ``j % num_workers`` of its share. Samples are
    shuffled within a buffer of `shuffle_buffer`. Call `set_epoch` before each
    epoch (a DataLoader without persistent workers sends the new epoch to them).
    Ranks may get unequal counts (`samples_for_rank`); frames keep their aspect
    ratio, so widths differ between clips of different shapes.
    """

    def __init__(self, manifest: ShardManifest | str | Path, *, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle_buffer: int = 256, with_keys: bool = False):
        super().__init__()
        self.manifest = manifest if isinstance(manifest, ShardManifest) else open_shards(manifest)
        problems = _too_small(world_size=(world_size, 1), seed=(seed, 0), shuffle_buffer=(shuffle_buffer, 1))
        if not 0 <= rank < world_size:
            problems.append(f"rank must be between 0 and world_size - 1 = {world_size - 1}, got {rank!r}")
        check(problems, "shard stream settings")
        self.rank, self.world_size, self.seed, self.shuffle_buffer, self.with_keys = rank, world_size, seed, shuffle_buffer, with_keys
        self.epoch = 0
        self._check_enough(world_size, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shards_for_rank(self, rank: int, world_size: int, epoch: int) -> list[int]:
        """Indices into ``manifest.shards`` that `rank` of `world_size` reads in `epoch`, in reading order."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.manifest.shards))
        return [int(i) for i in order[rank::world_size]]

    def samples_for_rank(self, rank: int, world_size: int, epoch: int) -> int:
        """How many samples `rank` of `world_size` gets in `epoch` (all its DataLoader workers together)."""
        return sum(self.manifest.shards[i].samples for i in self.shards_for_rank(rank, world_size, epoch))

    def __iter__(self) -> Iterator:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        self._check_enough(self.world_size, workers)
        mine = self.shards_for_rank(self.rank, self.world_size, self.epoch)[worker::workers]
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        samples = (item for i in mine for item in read_shard(self.manifest.folder / self.manifest.shards[i].name))
        for key, _, frames in _shuffled(samples, self.shuffle_buffer, rng):
            tensor = torch.from_numpy(frames)
            yield (key, tensor) if self.with_keys else tensor

    def _check_enough(self, world_size: int, workers: int) -> None:
        have, need = len(self.manifest.shards), world_size * workers
        if have < need:
            fits = max(1, self.manifest.samples // need)
            raise ConfigError(
                f"{self.manifest.folder} holds {have} shards, fewer than the {world_size} processes x {workers} DataLoader "
                f"workers = {need} that each need one; rerun `snapaction shard` with a smaller --clips-per-shard "
                f"(now {self.manifest.clips_per_shard}; at most {fits} gives every one a shard), or use fewer workers."
            )


# --- writing --------------------------------------------------------------------------


def _check_settings(num_frames: int, size: int, clips_per_shard: int) -> None:
    check(_too_small(num_frames=(num_frames, 1), size=(size, 8), clips_per_shard=(clips_per_shard, 1)), "shard settings")


def _too_small(**values: tuple[int, int]) -> list[str]:
    """'NAME must be at least LEAST, got VALUE' for each ``NAME=(VALUE, LEAST)`` below its least."""
    return [f"{name} must be at least {least}, got {value!r}" for name, (value, least) in values.items() if value < least]


def _encode(job: tuple[int, CuratedClip, int, int]) -> list[tuple[str, bytes]] | str:
    """The tar members of one sample (in a worker process), or why its clip cannot be read."""
    from PIL import Image

    from ..data.check import failure_reason
    from ..video import read_frames

    index, clip, num_frames, size = job
    try:
        indices = clip.indices(num_frames)
        frames = read_frames(clip.path, indices, size=size)
    except Exception as err:  # one odd file must not stop the others
        return failure_reason(clip.path, err)
    key = f"{index:07d}"
    meta = {"path": str(clip.path), "start": clip.start, "end": clip.end, "fps": clip.fps, "frames": indices.tolist()}
    members = [(f"{key}.json", json.dumps(meta).encode())]
    width = max(2, len(str(num_frames - 1)))
    for t, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, "JPEG", quality=JPEG_QUALITY)
        members.append((f"{key}.{t:0{width}d}.jpg", buffer.getvalue()))
    return members


def _write_tar(out: Path, number: int, samples: list[list[tuple[str, bytes]]]) -> Shard:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for members in samples:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0  # the same clips give the same bytes
                tar.addfile(info, io.BytesIO(data))
    name = f"shard-{number:06d}.tar"
    atomic_write(out / name, buffer.getvalue())
    return Shard(name, len(samples), len(buffer.getvalue()))


def _fingerprint(clips: list[CuratedClip], num_frames: int, size: int, clips_per_shard: int) -> str:
    def content(clip: CuratedClip) -> str:
        if clip.digest:
            return clip.digest
        stat = clip.path.stat()  # clips made by hand, not by curate: the file's size and time stand for its bytes
        return f"{stat.st_size}-{stat.st_mtime_ns}"

    settings = [FORMAT_VERSION, JPEG_QUALITY, num_frames, size, clips_per_shard]
    listed = [[str(c.path), c.first, c.frames, c.start, c.end, content(c)] for c in clips]
    return hashlib.sha256(json.dumps([settings, listed]).encode()).hexdigest()


def _finished(out: Path, fingerprint: str) -> ShardManifest | None:
    """The manifest in `out` when its shards hold exactly what `fingerprint` describes, whole."""
    try:
        manifest = open_shards(out)
    except DataError:
        return None
    if manifest.fingerprint != fingerprint:
        return None
    whole = all(path.stat().st_size == shard.bytes for path, shard in zip(manifest.paths(), manifest.shards))
    return manifest if whole else None


def _prepare(out: Path) -> bool:
    """Check that `out` can take the shards: True when it holds shards (or parts of them) written before, which
    the new ones replace whole, False when it is new or empty. Anything else stops the run before a file is touched."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; choose a folder for the shards.")
    if not out.is_dir():
        return False
    foreign = sorted(p.name for p in out.iterdir() if not _OURS.fullmatch(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DataError(f"{out} holds files `snapaction shard` did not write ({shown}); choose a new or empty folder, "
                        "SnapAction will not write over or delete them.")
    return any(out.iterdir())


def _shuffled(items: Iterable, size: int, rng: np.random.Generator) -> Iterator:
    """`items` in an order shuffled within a buffer of `size` (the usual streaming shuffle)."""
    buffer: list = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        i = int(rng.integers(len(buffer)))
        yield buffer[i]
        buffer[i] = item
    for i in rng.permutation(len(buffer)):
        yield buffer[i]
