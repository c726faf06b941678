"""End to end: labelled clips -> a trained pose classifier (skipped clips reported); a clip -> class probabilities.

What the CLI and the run folder call. Every clip that decodes is used, with
nobody in view or not (what the frames showed is a feature, and prediction
says how many frames had a body and hands); a clip that does not decode is
reported in ``skipped`` with the reason and never trained on; the batch goes on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ClipError, SnapActionError

from .classifier import PoseClassifier, load_classifier
from .features import PoseSequence, pose_sequence
from .landmarks import LandmarkCache, extract_landmarks
from .settings import PoseSettings
from .training import PoseReport, train_pose_classifier

log = logging.getLogger(__name__)
SETTINGS_FILE = "pose_settings.json"


@dataclass
class PoseFit:
    """A trained pose model, its training report, and the clips left out as (path, reason)."""

    model: "PosePipeline"
    report: PoseReport
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def clip_landmarks(path: str | Path, settings: PoseSettings, cache: LandmarkCache | None = None):
    """The `Landmarks` of one clip's frame grid: from `cache` when given, else extracted. Raises `ClipError`."""
    return cache.get(path) if cache is not None else extract_landmarks(path, settings.frames, settings.decode_size, settings.hands)


def clip_sequence(path: str | Path, settings: PoseSettings, cache: LandmarkCache | None = None) -> PoseSequence:
    """The normalised pose of one clip (landmarks from `cache` when given). Raises `ClipError` for a clip that cannot be used."""
    return pose_sequence(clip_landmarks(path, settings, cache), settings.min_person_frames)


def load_sequences(items: list[tuple[Path, str]], classes: list[str], settings: PoseSettings,
                   cache: LandmarkCache | None) -> tuple[list[PoseSequence], np.ndarray, list[tuple[Path, str]]]:
    """Pose sequences and int labels of (clip, class name) pairs, and the (path, reason) of clips that could not be used."""
    unknown = sorted({label for _, label in items} - set(classes))
    if unknown:
        raise SnapActionError(f"labels {unknown} are not among the classes {list(classes)}")
    from tqdm.auto import tqdm

    index = {name: i for i, name in enumerate(classes)}
    seqs, labels, skipped = [], [], []
    for path, label in tqdm(items, desc="pose landmarks", unit="clip", leave=False, disable=len(items) < 8):
        try:
            seqs.append(clip_sequence(path, settings, cache))
            labels.append(index[label])
        except ClipError as err:
            log.warning("skipping %s: %s", err.path, err.reason)
            skipped.append((Path(path), err.reason))
    return seqs, np.array(labels, np.int64), skipped


def fit_pose(train: list[tuple[Path, str]], val: list[tuple[Path, str]], classes: list[str],
             settings: PoseSettings, cache_dir: str | Path | None, seed: int = 0) -> PoseFit:
    """Extract (or read cached) landmarks of every clip, train the pose classifier, report what was skipped."""
    cache = LandmarkCache(cache_dir, settings.frames, settings.decode_size, settings.hands) if cache_dir is not None else None
    train_seqs, train_labels, skipped = load_sequences(train, classes, settings, cache)
    val_seqs, val_labels, skipped_val = load_sequences(val, classes, settings, cache)
    model, report = train_pose_classifier(train_seqs, train_labels, val_seqs, val_labels, list(classes), settings, seed)
    return PoseFit(PosePipeline(model, settings, cache_dir), report, skipped + skipped_val)


class PosePipeline:
    """A trained pose classifier with the settings its inputs were made with; predicts from clip paths."""

    def __init__(self, model: PoseClassifier, settings: PoseSettings, cache_dir: str | Path | None = None):
        self.model = model
        self.settings = settings
        self.cache = LandmarkCache(cache_dir, settings.frames, settings.decode_size, settings.hands) if cache_dir is not None else None

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    def predict(self, path: str | Path) -> dict[str, float]:
        """Probability of every class for one clip (they sum to 1). Raises `ClipError` for a clip that does not decode."""
        return self.predict_seen(path)[0]

    def predict_seen(self, path: str | Path) -> tuple[dict[str, float], dict[str, int]]:
        """(probabilities, what was seen: ``{"frames": 16, "body": 3, "hands": 12}``) for one clip."""
        landmarks = clip_landmarks(path, self.settings, self.cache)
        proba = self.model.predict_proba([pose_sequence(landmarks)])[0]
        return {name: float(p) for name, p in zip(self.classes, proba)}, landmarks.seen()

    def save(self, folder: str | Path) -> Path:
        """Write the classifier files and ``pose_settings.json`` into `folder`."""
        folder = self.model.save(folder)
        (folder / SETTINGS_FILE).write_text(json.dumps(self.settings.to_dict(), indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, cache_dir: str | Path | None = None) -> "PosePipeline":
        """The pipeline `save` wrote to `folder`."""
        folder = Path(folder)
        if not (folder / SETTINGS_FILE).is_file():
            raise SnapActionError(f"no pose model in {folder}: {SETTINGS_FILE} is missing (PosePipeline.save writes it)")
        settings = PoseSettings.from_dict(json.loads((folder / SETTINGS_FILE).read_text()))
        return cls(load_classifier(folder), settings, cache_dir)
