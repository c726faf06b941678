"""Splits: SnapAction's grouped train/validation split, and the official split files of UCF101 and HMDB51.

`split(samples)` divides clips into training and validation without putting
one source video on both sides.

`official_split(root, split)` reads UCF101's ``classInd.txt`` +
``testlist01.txt`` (or ``trainlist01.txt``) and HMDB51's
``<class>_test_split1.txt`` files, and finds the listed clips under `root`:
as listed, flat, as a frame folder named after the video, or with another
video extension. Listed clips that are not found are returned with the reason.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import DataError, did_you_mean

from .layout import Sample

log = logging.getLogger(__name__)

_UCF_TEST = re.compile(r"^testlist(\d+)\.txt$", re.IGNORECASE)
_HMDB = re.compile(r"^(.+)_test_split(\d+)\.txt$", re.IGNORECASE)


def split(samples: Iterable[Sample], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """(train, validation): whole groups go to one side, about `val_fraction` of each class to validation.

    Seeded and deterministic. Every class keeps at least one group in
    training; every class with two or more groups gets at least one in
    validation (when a group mixes classes, keeping another class's last
    training group wins). Samples keep their input order on both sides.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    samples = list(samples)
    if val_fraction == 0:
        return samples, []
    counts: dict[str, Counter] = {}  # group -> samples per label
    for s in samples:
        counts.setdefault(s.group, Counter())[s.label] += 1
    groups_of: dict[str | None, list[str]] = {}
    for group in sorted(counts):
        for label in counts[group]:
            groups_of.setdefault(label, []).append(group)
    left_in_train = {label: len(groups) for label, groups in groups_of.items()}
    rng = np.random.default_rng(seed)
    val: set[str] = set()

    def movable(group: str) -> bool:
        return group not in val and all(left_in_train[label] > 1 for label in counts[group])

    def move(group: str) -> None:
        val.add(group)
        for label in counts[group]:
            left_in_train[label] -= 1

    for label in sorted(groups_of, key=lambda c: (c is not None, c or "")):
        groups = [groups_of[label][i] for i in rng.permutation(len(groups_of[label]))]
        target = val_fraction * sum(counts[g][label] for g in groups)
        have = sum(counts[g][label] for g in groups if g in val)
        for group in groups:
            n = counts[group][label]
            if movable(group) and abs(have + n - target) < abs(have - target):
                move(group)
                have += n
        if have == 0:  # target below one group: still give the class its smallest movable group
            candidates = [g for g in groups if movable(g)]
            if candidates:
                move(min(candidates, key=lambda g: counts[g][label]))
    return [s for s in samples if s.group not in val], [s for s in samples if s.group in val]


@dataclass(frozen=True)
class ListedClip:
    """One clip named by an official split file."""

    path: Path
    label: str
    group: str


def official_split(root: str | Path, split: str | Path, number: int = 1, part: str = "test") -> tuple[list[ListedClip], list[tuple[Path, str]]]:
    """The clips an official UCF101 or HMDB51 split file lists, found under dataset folder `root`.

    `split` is one of:
      - UCF101: ``testlist01.txt`` (``classInd.txt`` beside it is read when
        present), ``trainlist01.txt``, or the ``ucfTrainTestlist`` folder
        (then `number` picks ``testlist0<number>.txt``);
      - HMDB51: the ``testTrainMulti_7030_splits`` folder or any one
        ``<class>_test_split<number>.txt`` in it (all classes of that split
        number are read; 1 marks training clips, 2 test clips).
    `part` is 'test' or 'train'. A listed clip is found as
    ``root/<class>/<name>``, ``root/<name>``, or a frame folder or other
    video extension with the same stem. Returns the clips found (sorted as
    listed) and the listed clips not found, each with the reason.
    """
    if part not in ("test", "train"):
        raise ValueError(f"part must be 'test' or 'train', got {part!r}")
    root, split = Path(root), Path(split)
    if not split.exists():
        raise DataError(f"split file {split} does not exist; pass UCF101's testlist01.txt (or its folder) or HMDB51's *_test_split1.txt folder")
    if split.is_file():
        if _UCF_TEST.match(split.name) or split.name.lower().startswith("trainlist"):
            number = int(re.search(r"(\d+)", split.name).group(1))
            entries = _ucf(split.parent, number, part, given=split)
        elif _HMDB.match(split.name):
            entries = _hmdb(split.parent, int(_HMDB.match(split.name).group(2)), part)
        else:
            raise DataError(f"{split.name} is not an official split file: expected UCF101's testlist01.txt or HMDB51's <class>_test_split1.txt")
    else:
        names = [p.name for p in split.iterdir()]
        if any(_UCF_TEST.match(n) for n in names):
            entries = _ucf(split, number, part)
        elif any(_HMDB.match(n) for n in names):
            entries = _hmdb(split, number, part)
        else:
            raise DataError(f"{split} holds no official split files (UCF101 testlist01.txt, HMDB51 <class>_test_split1.txt)")
    if not entries:
        raise DataError(f"the {part} part of split {number} in {split} lists no clips")
    found, missing = [], []
    for rel, label in entries:
        path = _locate(root, rel, label)
        if path is None:
            missing.append((root / rel, f"listed in the {part} split but not found under {root}"))
        else:
            found.append(ListedClip(path, label, _group(Path(rel).stem)))
    if not found:
        raise DataError(f"none of the {len(entries)} clips of the split was found under {root} (first: {entries[0][0]}); pass the folder that holds the class folders")
    return found, missing


def _ucf(folder: Path, number: int, part: str, given: Path | None = None) -> list[tuple[str, str]]:
    """(relative path, class) of UCF101's list; the class is the path's folder, checked against classInd.txt."""
    name = f"{part}list{number:02d}.txt"
    path = folder / name if given is None or not given.name.lower().startswith(part) else given
    if not path.is_file():
        raise DataError(f"{folder} has no {name}")
    known = None
    index = folder / "classInd.txt"
    if index.is_file():
        known = {line.split()[1] for line in index.read_text().splitlines() if len(line.split()) == 2}
    entries = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rel = line.split()[0].replace("\\", "/")
        label = rel.split("/")[0] if "/" in rel else None
        if label is None:
            raise DataError(f"{path}: line {line!r} has no class folder; expected <class>/<video>.avi")
        if known is not None and label not in known:
            matches = [k for k in known if k.lower() == label.lower()]
            if not matches:
                raise DataError(f"{path}: class {label!r} is not in {index}.{did_you_mean(label, known)}")
            label = matches[0]
        entries.append((rel, label))
    return entries


def _hmdb(folder: Path, number: int, part: str) -> list[tuple[str, str]]:
    """(relative path, class) of HMDB51's per-class lists: '<video>.avi <0|1|2>', 1 train, 2 test."""
    wanted = "2" if part == "test" else "1"
    entries = []
    for file in sorted(folder.iterdir()):
        match = _HMDB.match(file.name)
        if not match or int(match.group(2)) != number:
            continue
        label = match.group(1)
        for line in file.read_text().splitlines():
            cells = line.split()
            if len(cells) == 2 and cells[1] == wanted:
                entries.append((f"{label}/{cells[0]}", label))
    return entries


def _locate(root: Path, rel: str, label: str) -> Path | None:
    """Where a listed clip is under `root`: as listed, flat, as a frame folder, or with another video extension."""
    from ..video import VIDEO_EXTENSIONS

    rel_path = Path(rel)
    stem = rel_path.stem
    for base in (root / rel_path.parent, root / label, root):
        if (base / rel_path.name).is_file():
            return base / rel_path.name
        if (base / stem).is_dir():
            return base / stem
        for ext in VIDEO_EXTENSIONS:
            if (base / (stem + ext)).is_file():
                return base / (stem + ext)
    return None


def _group(stem: str) -> str:
    match = re.match(r"^(.+_g\d+)_c\d+$", stem, re.IGNORECASE)
    return match.group(1) if match else stem


def eval_samples(data: str | Path, split: str | Path | None = None, split_number: int = 1):
    """(labelled samples, clips listed but unusable) from a dataset folder/manifest or an official split."""
    from .layout import scan

    if split:
        found, missing = official_split(data, split, split_number)
        return found, [(str(p), r) for p, r in missing]
    clips = scan(data)
    if clips.layout == "unlabeled":
        raise DataError(f"{data} holds unlabeled clips; eval needs ROOT/<class>/ folders or a manifest with labels (use `snapaction predict` for unlabeled clips)")
    for path, note in clips.notes:  # a file with no extension, used by its content
        log.warning("%s %s", path, note)
    return clips.samples, [(str(p), r) for p, r in clips.skipped if r != "hidden"]
