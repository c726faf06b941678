"""`PoseSettings`: every knob of the pose model, documented once (the fields double as CLI help)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import check, option

CLASSIFIERS = ("auto", "stats", "temporal")


@dataclass
class PoseSettings:
    """Settings of the pose model: landmark extraction, features, augmentation, classifier."""

    frames: int = 32
    """Frames spread evenly over each clip that pose is estimated on. 32: on real falls vs daily activities
    (leave one subject out) 22 of 23 clips right against 20 at 16 (bench/people.py); on exercise clips 16
    had matched 32 and 8 lost 1-3 points. On the command line: ``--num-frames``, as for every backbone."""
    decode_size: int = option(360, "short side in pixels that frames are decoded at for pose estimation; never upscaled", flag="--pose-decode-size")
    sequence_length: int = option(32, "time steps the landmark sequence is resampled to before features and classifiers", flag="--pose-sequence-length")
    hands: bool = option(True, "also find hands (MediaPipe Hands, lite model) on the frames where they are large enough to find: close-ups where the hands do the action", flag="--pose-hands")
    min_person_frames: float = option(0.25, "fraction of the frames a body or hands must be found in for a prediction to count as sure; "
                                      "clips with fewer are still classified (and trained on) and their predictions marked unsure", flag="--pose-min-person-frames")
    mirror: bool = True
    """Train on mirrored copies (left and right swapped) and average the mirrored view at prediction.
    On the command line: ``--no-flip`` turns it off, as for video models (for classes that differ in left vs right)."""
    augment_copies: int = option(8, "augmented copies of each training clip (time warp, rotation, scale, joint dropout)", flag="--pose-augment-copies")
    classifier: str = option("stats", "'stats' (logistic regression on temporal statistics: on real people it matched or beat the CNN, and trains on 100 clips in seconds), "
                             "'temporal' (small 1D CNN), or 'auto': train both, keep the better on validation (ties: stats)", choices=CLASSIFIERS, flag="--pose-classifier")
    stats_c: float = option(0.5, "inverse L2 regularisation strength of the logistic regression", flag="--pose-stats-c")
    temporal_epochs: int = option(120, "training epochs of the temporal network (full batches of the augmented training set)", flag="--pose-temporal-epochs")
    temporal_width: int = option(64, "channels of the temporal network's convolutions", flag="--pose-temporal-width")

    def __post_init__(self):
        problems = []
        if not 2 <= self.frames <= 256:
            problems.append(f"frames must be between 2 and 256, got {self.frames!r}")
        if not 64 <= self.decode_size <= 2160:
            problems.append(f"decode_size must be between 64 and 2160 pixels, got {self.decode_size!r}")
        if not 4 <= self.sequence_length <= 256:
            problems.append(f"sequence_length must be between 4 and 256, got {self.sequence_length!r}")
        if not 0.0 <= self.min_person_frames <= 1.0:
            problems.append(f"min_person_frames is a fraction between 0 and 1, got {self.min_person_frames!r}")
        if not 0 <= self.augment_copies <= 100:
            problems.append(f"augment_copies must be between 0 and 100, got {self.augment_copies!r}")
        if self.classifier not in CLASSIFIERS:
            problems.append(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}")
        if not self.stats_c > 0:
            problems.append(f"stats_c must be positive, got {self.stats_c!r}")
        if not 1 <= self.temporal_epochs <= 10_000:
            problems.append(f"temporal_epochs must be between 1 and 10000, got {self.temporal_epochs!r}")
        if not 4 <= self.temporal_width <= 1024:
            problems.append(f"temporal_width must be between 4 and 1024, got {self.temporal_width!r}")
        check(problems, "pose settings")

    def to_dict(self) -> dict:
        """JSON-ready values of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "PoseSettings":
        """Settings from `to_dict` output; unknown keys are a `ConfigError` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        check([f"unknown pose setting {k!r}" for k in unknown], "pose settings")
        return cls(**values)
