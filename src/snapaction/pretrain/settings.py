"""What `snapaction pretrain` is asked to do: one documented dataclass, also its command-line options."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import check, option
from ..training.config import DEFAULT_CACHE, PRECISIONS
from .model import SIZES, Objective

SCRATCH = "scratch"
"""``--backbone scratch``: random weights at ``--size``."""


@dataclass(frozen=True)
class PretrainConfig:
    """A masked-autoencoder pretraining run: unlabeled clips (a folder or shards) in, a backbone folder out."""

    data: str
    """A folder of unlabeled clips (curated and sharded into ``OUT/pretraining/shards`` first), or a folder of
    shards written by ``snapaction shard``."""
    out: str
    backbone: str = option(SCRATCH, "where to start: 'scratch' (random weights at --size), or a VideoMAE hub id or folder to continue from (domain adaptation)")
    size: str = option("tiny", "model size for --backbone scratch: tiny (4x192, 8 frames of 64 px, for CPUs), small (12x384, 16 frames of 112 px) or base (VideoMAE-base, GPUs)", tuple(SIZES))
    objective: Objective = field(default_factory=Objective)
    epochs: int = option(100, "most passes over the clips (--max-minutes may end the run sooner)")
    minutes: float | None = option(None, "time budget in minutes: the learning-rate schedule is laid over it and the run ends at its bottom (default: no limit, --epochs ends the run)",
                                   flag="--max-minutes", aliases=("--minutes",))
    batch_size: int = option(32, "clips per step on each process")
    grad_accum: int = option(1, "steps whose gradients are summed before one optimizer step")
    lr: float = option(1.5e-3, "peak learning rate (AdamW, betas 0.9/0.95)")
    weight_decay: float = option(0.05, "AdamW weight decay")
    warmup: float = option(0.1, "share of the schedule spent warming the learning rate up linearly")
    precision: str = option("auto", "mixed precision: auto = bf16/fp16 on GPUs, bf16 on CPUs with native bf16, else none", PRECISIONS)
    snapshots: list[float] = option([], "also keep the backbone as it is after each of these minutes of pretraining, in OUT/pretraining/snapshots/ (to compare how long pretraining pays) (default: no snapshots)")
    preview_every: int = option(200, "write reconstruction previews of a few fixed clips every this many steps (0: only at the end)")
    checkpoint_minutes: float = option(2.0, "save a resumable checkpoint when this many minutes have passed since the last")
    resume: bool = option(False, "continue an interrupted run in --out from its last checkpoint")
    workers: int = option(0, "data loading processes per training process (0: load in the training process)")
    seed: int = option(0, "seed for initial weights, masks, sampling and augmentation")
    cut_seconds: float | None = option(None, "when curating a folder: cut videos longer than this into clips of this length (default: keep videos whole)")
    cache_dir: str = option(str(DEFAULT_CACHE), "SnapAction's cache folder")

    def __post_init__(self):
        problems = []
        if self.size not in SIZES:
            problems.append(f"size must be one of {list(SIZES)}, got {self.size!r}")
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.minutes is not None and self.minutes <= 0:
            problems.append(f"minutes must be positive, got {self.minutes!r}")
        if self.lr <= 0:
            problems.append(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.warmup < 1:
            problems.append(f"warmup must be in [0, 1), got {self.warmup!r}")
        if any(m <= 0 for m in self.snapshots):
            problems.append(f"snapshots must be positive minutes, got {list(self.snapshots)!r}")
        if self.preview_every < 0:
            problems.append(f"preview_every must be zero or positive, got {self.preview_every!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        check(problems, "pretraining options")
