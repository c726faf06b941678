"""Named presets: models SnapAction builds itself, each a row of one table with its own defaults.

A preset is what ``--backbone NAME`` means when NAME is not a folder or hub id.
Each row carries everything that differs from a pretrained hub backbone: how
to build the model, the frames it sees (`sampling`), its preprocessing, the
fine-tuning modes it allows, its learning rate, and the budget a learning
curve gives one of its models. Code asks ``preset(name)`` instead of comparing
names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..data.sampling import Sampling


@dataclass(frozen=True)
class Preset:
    """One named model SnapAction builds from random weights (or, for pose, from a packaged pose model)."""

    name: str
    summary: str
    """A few words for help texts: what the preset is."""
    sampling: Sampling
    """Frames per clip and how they are chosen, unless the user's flags override a field."""
    preprocessing: dict | None
    """`snapaction.preprocess.Preprocessing` fields (None for a model that does not see pixels)."""
    build: Callable[[list[str]], tuple[object, list[str]]] | None
    """classes -> (model with a fresh head, names of its new modules); None for a preset with its own trainer."""
    available: Callable[[], None] | None = None
    """Raises, in one sentence with the install command, when what the preset needs is not installed."""
    trainer: str = "video"
    """'video': the fine-tuning loop on pixels (`snapaction.training.loop`); 'pose': landmarks and a
    classifier of their own (`snapaction.training.pose`)."""
    finetune: tuple[str, ...] = ("full",)
    """The fine-tuning modes it allows; the first is its default."""
    lr: float = 1e-3
    curve_minutes: float = 1.5
    """Time budget of one model of a learning curve."""
    curve_clips_seen: int = 4000
    """Training clips (epochs x clips) one model of a learning curve sees: about what the preset needs to converge."""
    curve_epochs: tuple[int, int] = (20, 200)
    """Fewest and most epochs of one model of a learning curve."""

    @property
    def default_finetune(self) -> str:
        return self.finetune[0]


def _build_scratch(classes: list[str]):
    from .scratch import C3DConfig, C3DForVideoClassification

    config = C3DConfig(num_labels=len(classes), id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)})
    return C3DForVideoClassification(config), ["classifier"]


def _require_mediapipe() -> None:
    from ..pose.landmarks import require_mediapipe

    require_mediapipe()


PRESETS: dict[str, Preset] = {
    "scratch": Preset(
        name="scratch",
        summary="small model, random weights",
        # 8 frames two apart, 64x64 crops from 72-pixel frames (docs/scratch-preset.md)
        sampling=Sampling(num_frames=8, mode="strided", stride=2),
        preprocessing={"size": 72, "crop": (64, 64), "mean": (0.45, 0.45, 0.45), "std": (0.225, 0.225, 0.225)},
        build=_build_scratch,
        # the loss reaches its floor in about 45 s on 2 cores; ~4000 clips seen converge on the demo data
        curve_minutes=1.5,
        curve_clips_seen=4000,
        curve_epochs=(20, 200),
    ),
    "pose": Preset(
        name="pose",
        summary="body landmarks over time + a small classifier, for people; needs snapaction[pose]",
        # the frames pose is estimated on: spread over the whole clip (16 matched 32 in trials; 8 lost 1-3 points)
        sampling=Sampling(num_frames=16, mode="uniform"),
        preprocessing=None,
        build=None,
        available=_require_mediapipe,
        trainer="pose",
        # seconds per model once landmarks are cached
        curve_minutes=2.0,
        curve_clips_seen=0,
        curve_epochs=(1, 1),
    ),
}


def preset(backbone: str) -> Preset | None:
    """The preset `backbone` names, or None for a folder or hub id."""
    return PRESETS.get(backbone)


def preset_names() -> str:
    """"'scratch' (small model, random weights) or 'pose' (...)": every preset with its summary, for help and error texts."""
    return " or ".join(f"'{p.name}' ({p.summary})" for p in PRESETS.values())
