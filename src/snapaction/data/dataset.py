"""Datasets: the clips a run trains and validates on, served to PyTorch.

The pieces, in the order training uses them:

- `scan` (`snapaction.data.layout`): clips and classes of a folder or manifest;
- `usable` (`snapaction.data.check`): which clips decode;
- `split` (`snapaction.data.splits`): a seeded, class-stratified train/validation split by source group;
- `prepare_data`: all three, with every clip left out reported;
- `ClipDataset` + `collate_clips`: ``uint8 (T, H, W, C)`` clips for a DataLoader,
  optionally read from a `ClipCache`; a clip that fails to decode is logged
  and left out of its batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple

import numpy as np
import torch

from ..errors import ClipError, DataError, did_you_mean
from ..video import VideoInfo, probe, read_frames
from .cache import ClipCache
from .check import usable
from .layout import ClipSet, Sample, scan
from .sampling import Sampling, sample_indices
from .splits import split

if TYPE_CHECKING:
    from ..augment import Augment

log = logging.getLogger(__name__)


class ClipDataset(torch.utils.data.Dataset):
    """Clips as ``(transform(uint8 tensor (T, H, W, C)), class index)``; unlabeled samples get index -1.

    Without a cache, each item probes the clip and decodes only the frames
    `sampling` picks. With `cache`, each clip is decoded once into the
    ``sampling.grid`` frames spread over it, and `sampling` picks among those:
    the same frames either way, since sampling always picks from its grid.
    Training jitter (frame choice, and the transform's torch randomness) is
    drawn from a generator seeded by (seed, epoch, index): the same on every
    rerun, different every epoch. Call `set_epoch` before each epoch; with
    ``persistent_workers`` a DataLoader's workers would not see the new epoch.
    A clip that cannot be decoded is logged once and returned as a
    `ClipFailure`, which `collate_clips` passes on beside the batch so the
    trainer can list it; the clip is not decoded again (`failed`).
    """

    def __init__(
        self,
        samples: Iterable[Sample],
        classes: list[str],
        sampling: Sampling,
        size: int | None,
        train: bool,
        cache: ClipCache | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int = 0,
        masker=None,
    ):
        self.samples = list(samples)
        self.classes = list(classes)
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({s.label for s in self.samples if s.label is not None and s.label not in index})
        if unknown:
            raise DataError(
                f"clips are labelled {unknown}, which are not among the classes {self.classes}."
                f"{did_you_mean(unknown[0], self.classes)} Pass the classes the clips were scanned with."
            )
        self.labels = [index[s.label] if s.label is not None else -1 for s in self.samples]
        self.sampling, self.size, self.train = sampling, size, train
        if cache is not None and not sampling.grid:
            raise ValueError("a cached ClipDataset needs sampling.grid: the frames per clip that the cache keeps")
        self.cache = cache
        self.masker = masker  # a `snapaction.mask.Masker`: the background of the grid's frames is filled
        if masker is not None and not sampling.grid:
            raise ValueError("a masked ClipDataset needs sampling.grid: the frames per clip that masks are computed for")
        self.transform, self.seed = transform, seed
        self.epoch = 0
        self.failed: dict[int, str] = {}
        """Index -> reason for the clips that failed to decode; they are not tried again."""
        self._infos: dict[int, VideoInfo] = {}
        if sampling.grid and sampling.grid < sampling.num_frames:
            log.warning("the grid of %d frames per clip is below num_frames=%d: frames will repeat", sampling.grid, sampling.num_frames)

    def set_epoch(self, epoch: int) -> None:
        """Draw new training jitter: items depend on (seed, epoch, index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def frames(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The sampled ``uint8 (T, H, W, C)`` frames of one clip (jittered with `rng`). Raises `ClipError`."""
        path = self.samples[index].path
        if self.masker is not None:  # masks are cached for the grid: sample among its masked frames
            every = self.cache.load(path, self.sampling.grid, self.size) if self.cache is not None else None
            every = self.masker.masked_grid(path, self.sampling.grid, self.size, every)
            return every[sample_indices(len(every), self.sampling, rng)]
        if self.cache is not None:
            every = self.cache.load(path, self.sampling.grid, self.size)
            return every[sample_indices(len(every), self.sampling, rng)]
        info = self._infos.get(index) or probe(path)
        self._infos[index] = info
        return read_frames(path, sample_indices(info.num_frames, self.sampling, rng), size=self.size, info=info)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | ClipFailure:
        if index in self.failed:
            return ClipFailure(index, str(self.samples[index].path), self.failed[index])
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        try:
            frames = self.frames(index, rng)
        except ClipError as err:
            log.warning("skipping clip %s from now on: %s", err.path, err.reason)
            self.failed[index] = err.reason
            return ClipFailure(index, str(self.samples[index].path), err.reason)
        clip = torch.from_numpy(frames)  # (T, H, W, C) uint8
        if self.transform is not None:
            if rng is None:
                clip = self.transform(clip)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(rng.integers(2**63)))
                    clip = self.transform(clip)
        return clip, self.labels[index]


class ClipFailure(NamedTuple):
    """A clip of a `ClipDataset` that did not decode: its index there, its path and why."""

    index: int
    path: str
    reason: str


def collate_clips(batch: list[tuple[torch.Tensor, int] | ClipFailure]) -> tuple[torch.Tensor | None, torch.Tensor | None, list[ClipFailure]]:
    """``(clips (B, ...), labels (B,) int64, failures)``: the clips that decoded stacked, the others listed.

    Clips and labels are None when no clip of the batch could be read.
    """
    failed = [item for item in batch if isinstance(item, ClipFailure)]
    good = [item for item in batch if not isinstance(item, ClipFailure)]
    if not good:
        return None, None, failed
    clips = torch.stack([clip for clip, _ in good])
    labels = torch.tensor([label for _, label in good], dtype=torch.int64)
    return clips, labels, failed


class ClipTransform:
    """uint8 (T, H, W, C) frames -> normalised float32 (T, C, h, w) for the model.

    With an `Augment` (training): random resized crop, flip and colour jitter,
    the same for every frame. Without (validation, prediction): the backbone's
    own resize, centre crop and normalisation.
    """

    def __init__(self, preprocessing, augment: Augment | None = None):
        self.preprocessing = preprocessing
        self.augment = augment

    def __call__(self, frames, rng: np.random.Generator | None = None) -> torch.Tensor:
        from ..preprocess import normalize, to_float

        if self.augment is None:
            return self.preprocessing(frames)
        if rng is None:  # draw from torch's generator, which ClipDataset seeds per (seed, epoch, clip)
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
        video = self.augment(to_float(frames), self.preprocessing.crop, rng)
        return normalize(video, self.preprocessing.mean, self.preprocessing.std)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled (or class-balanced) indices that depend only on (seed, epoch), so resuming replays them."""

    def __init__(self, labels: list[int], seed: int, balanced: bool = False):
        self.labels = np.asarray(labels)
        self.seed = seed
        self.balanced = balanced
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        if not self.balanced:
            return iter(rng.permutation(len(self.labels)).tolist())
        counts = np.bincount(self.labels)
        weights = 1.0 / counts[self.labels]
        return iter(rng.choice(len(self.labels), len(self.labels), p=weights / weights.sum()).tolist())


@dataclass
class Data:
    """The clips a run trains and validates on."""

    classes: list[str]
    train: list
    val: list
    skipped: list[tuple[str, str]]
    clip_seconds: float
    """Median duration of the training clips: the stretch of video one model input covers."""


def labelled_clips(data: str | Path, what: str = "training") -> tuple[ClipSet, list[Sample], list[tuple[str, str]]]:
    """(what `scan` found, the clips that decode, (path, reason) for every clip left out, each logged).

    `what` names the use in the error for unlabeled data ('training', 'a learning curve').
    """
    clips = scan(data)
    if clips.layout == "unlabeled":
        raise DataError(f"{data} holds unlabeled clips; {what} needs one folder per class (ROOT/<class>/clip.mp4) or a manifest with labels")
    good, bad = usable(clips.samples)
    skipped = [(str(p), r) for p, r in list(clips.skipped) + list(bad)]
    for path, reason in skipped:
        log.warning("skipped %s: %s", path, reason)
    return clips, good, skipped


def prepare_data(data: str, val_data: str | None = None, val_fraction: float = 0.2, seed: int = 0) -> Data:
    """Scan, drop unreadable clips (reported), and split train/validation by source video."""
    clips, good, skipped = labelled_clips(data)
    if val_data:
        _, val, val_skipped = labelled_clips(val_data, "validation")
        skipped += val_skipped
        unknown = sorted({s.label for s in val} - set(clips.classes))
        if unknown:
            raise DataError(f"validation data {val_data} has classes {unknown} that the training data lacks")
        train = good
    else:
        train, val = split(good, val_fraction, seed)
    present = sorted({s.label for s in train})
    if len(present) < 2:
        raise DataError(f"{data} has usable clips for {len(present)} class(es); training needs at least two")
    if not val:
        raise DataError(f"no clips left for validation in {data}: add clips or pass --val-data")
    unjudged = sorted(set(present) - {s.label for s in val})
    if unjudged:
        log.warning("class(es) %s have no validation clip (too few clips or source groups to spare one): validation "
                    "accuracy says nothing about them; add clips of them or pass --val-data", ", ".join(map(repr, unjudged)))
    for path, note in clips.notes:
        log.warning("%s %s", path, note)
    per_class = {c: sum(s.label == c for s in val) for c in sorted({s.label for s in val})}
    if len(val) < 20:
        fewest = min(per_class, key=per_class.get)
        log.warning("validation has only %d clips (%d of class %r): one clip moves its accuracy by %.2f, so treat it as a "
                    "rough figure; add clips or pass --val-data", len(val), per_class[fewest], fewest, 1 / len(val))
    durations = [probe(s.path).duration for s in train[:: max(1, len(train) // 50)]]
    return Data(list(clips.classes), train, val, skipped, round(float(np.median(durations)), 3))
