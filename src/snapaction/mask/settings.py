"""How a run hides the background (`Masking`), saved in the run so that prediction masks new clips the same way."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config import check
from ..errors import did_you_mean

METHODS = ("sam2", "person", "motion")
"""'sam2': SAM 2 prompted automatically and propagated through the clip; 'person': MediaPipe's selfie
segmentation (ships in the mediapipe wheel); 'motion': background subtraction, no weights."""

FILLS = ("black", "blur", "mean")
"""What replaces the background: black; a heavy blur of it (keeps its colours); one fixed grey."""

MASK_SIZE = 160
"""Shorter side, in pixels, of the frames masks are computed on (whatever size the model sees)."""

DEFAULT_SAM2 = "facebook/sam2.1-hiera-tiny"

VERSIONS = {"motion": 2, "person": 1, "sam2": 1}
"""Bump a method's number when the masks it computes for the same frames would change: old cache entries then miss."""


@dataclass(frozen=True)
class Masking:
    """One masking setup: which method, how the background is filled, and the size masks are computed at."""

    method: str
    fill: str = "black"
    size: int = MASK_SIZE
    checkpoint: str = DEFAULT_SAM2
    """The SAM 2 checkpoint (hub id or folder), for method 'sam2' only."""

    def __post_init__(self):
        problems = []
        if self.method not in METHODS:
            problems.append(f"mask method {self.method!r} is not one of {list(METHODS)}.{did_you_mean(self.method, METHODS)}")
        if self.fill not in FILLS:
            problems.append(f"mask fill {self.fill!r} is not one of {list(FILLS)}.{did_you_mean(self.fill, FILLS)}")
        if self.size < 32:
            problems.append(f"mask size must be at least 32 pixels, got {self.size}")
        check(problems, "masking")

    def key(self) -> str:
        """What the masks depend on (not the fill, which is applied after): part of every cache key."""
        where = f"-{self.checkpoint}" if self.method == "sam2" else ""
        return f"{self.method}-v{VERSIONS[self.method]}-{self.size}{where}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> "Masking | None":
        """The masking a run saved (`RunInfo.masking`), or None for a run without masks (also one where
        ``--mask auto`` kept no mask: then only its ``auto`` record is there)."""
        if not values or not values.get("method"):
            return None
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Prompt:
    """Where SAM 2 should look in a clip: a point (x, y) or a box (x0, y0, x1, y1), pixels of the frames it is given."""

    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None

    def scaled(self, factor: float) -> "Prompt":
        """The same prompt on frames `factor` times as large."""
        scale = (lambda v: tuple(float(c) * factor for c in v) if v is not None else None)
        return Prompt(scale(self.point), scale(self.box))

    def key(self) -> str:
        return f"p{self.point}-b{self.box}"
