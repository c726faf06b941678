"""Training the pose classifier: an augmented pool of the training clips, both classifiers, the better one kept."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .augment import AugmentSettings, augment_sequence, mirror_sequence
from .classifier import PoseClassifier, StatsClassifier, TemporalClassifier
from .features import PoseSequence, resample_sequence
from .settings import PoseSettings


def training_pool(sequences: list[PoseSequence], labels: np.ndarray, settings: PoseSettings,
                  rng: np.random.Generator) -> tuple[list[PoseSequence], np.ndarray]:
    """Each training clip resampled to ``settings.sequence_length``, its mirror (if on) and ``augment_copies`` variants.

    Returns the sequences and their int64 labels; every augmentation keeps time running forwards.
    """
    aug = AugmentSettings(mirror=settings.mirror)
    pool, pool_labels = [], []
    for seq, label in zip(sequences, labels):
        base = resample_sequence(seq, settings.sequence_length)
        variants = [base] + ([mirror_sequence(base)] if settings.mirror else [])
        variants += [augment_sequence(seq, rng, settings.sequence_length, aug) for _ in range(settings.augment_copies)]
        pool += variants
        pool_labels += [int(label)] * len(variants)
    return pool, np.array(pool_labels, np.int64)


def create_classifier(kind: str, classes: list[str], settings: PoseSettings) -> PoseClassifier:
    """An untrained classifier of `kind` ('stats' or 'temporal') configured from `settings`."""
    table = {
        "stats": lambda: StatsClassifier(classes, settings.sequence_length, settings.mirror, c=settings.stats_c),
        "temporal": lambda: TemporalClassifier(classes, settings.sequence_length, settings.mirror,
                                               width=settings.temporal_width, epochs=settings.temporal_epochs),
    }
    return table[kind]()


@dataclass
class PoseReport:
    """What training found: both classifiers' validation accuracy and time, and which one was kept."""

    chosen: str
    val_accuracy: dict[str, float | None] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    num_train: int = 0
    num_val: int = 0
    pool_size: int = 0
    note: str = ""
    no_body: int = 0
    """Training and validation clips with no body found in any frame (trained on and judged like the rest)."""

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy(model: PoseClassifier, sequences: list[PoseSequence], labels: np.ndarray) -> float | None:
    """Fraction of `sequences` whose most probable class is the label; None when there are none."""
    if not len(sequences):
        return None
    return float((model.predict_proba(sequences).argmax(1) == np.asarray(labels)).mean())


def train_pose_classifier(train_seqs: list[PoseSequence], train_labels, val_seqs: list[PoseSequence], val_labels,
                          classes: list[str], settings: PoseSettings, seed: int = 0) -> tuple[PoseClassifier, PoseReport]:
    """Train the classifier(s) ``settings.classifier`` asks for and keep the better on validation.

    'auto' trains both on the same augmented pool and keeps the one with the
    higher validation accuracy; a tie, or no validation clips, keeps 'stats'
    (cheaper, and at 10-30 clips per class it matched or beat the network).
    Labels are ints indexing `classes`.
    """
    rng = np.random.default_rng(seed)
    train_labels = np.asarray(train_labels, np.int64)
    pool, pool_labels = training_pool(train_seqs, train_labels, settings, rng)
    kinds = ["stats", "temporal"] if settings.classifier == "auto" else [settings.classifier]
    models, report = {}, PoseReport(chosen=kinds[0], num_train=len(train_seqs), num_val=len(val_seqs), pool_size=len(pool),
                                    no_body=sum(not s.body.any() for s in [*train_seqs, *val_seqs]))
    for kind in kinds:
        start = time.perf_counter()
        models[kind] = create_classifier(kind, classes, settings).fit(pool, pool_labels, np.random.default_rng([seed, len(report.train_seconds)]))
        report.train_seconds[kind] = round(time.perf_counter() - start, 3)
        report.val_accuracy[kind] = accuracy(models[kind], val_seqs, val_labels)
    if len(kinds) > 1:
        if not len(val_seqs):
            report.note = "no validation clips: kept 'stats' without comparing"
        else:
            best = max(report.val_accuracy.values())
            report.chosen = next(k for k in kinds if report.val_accuracy[k] == best)  # kinds lists 'stats' first: ties keep it
    return models[report.chosen], report
