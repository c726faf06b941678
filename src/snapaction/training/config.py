"""What a training run is given (`TrainConfig`, saved resolved in the run) and what it reports (`TrainResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..augment import Augment
from ..config import check, option
from ..data.sampling import Sampling
from ..errors import ConfigError
from ..mask.settings import DEFAULT_SAM2, FILLS, METHODS, Masking
from ..models.settings import DEFAULT_BACKBONE, FINETUNE_MODES, LoraSettings
from ..models.presets import preset, preset_names
from ..pose.settings import PoseSettings

PRECISIONS = ("auto", "no", "bf16", "fp16")
DEFAULT_CACHE = Path.home() / ".cache" / "snapaction"
SAMPLING_FIELDS = {"num_frames", "mode", "stride"}
"""The `Sampling` fields a user sets (`grid` follows from --cache-frames)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run is given. Saved, resolved, in the run's snapaction.json."""

    data: str = ""
    """Training data: a folder of class folders, or a CSV manifest (positional on the command line)."""
    out: str = option("runs/latest", "run folder to write")
    backbone: str = option(DEFAULT_BACKBONE, f"hub id, local folder, or {preset_names()}")
    finetune: str | None = option(None, "how to train: 'lora' (adapters), 'full' (every weight), 'probe' (frozen backbone, linear head on cached features); default lora, full for scratch", FINETUNE_MODES)
    epochs: int = option(30, "most epochs to train")
    batch_size: int = option(8, "clips per step on each process")
    grad_accum: int = option(1, "steps whose gradients are summed before each optimizer step")
    lr: float | None = option(None, "peak learning rate (default: 5e-4 for lora, 5e-5 for full, 1e-3 for scratch and for probe)")
    weight_decay: float = option(0.05, "AdamW weight decay")
    warmup: float = option(0.1, "fraction of optimizer steps spent warming the learning rate up linearly")
    label_smoothing: float = option(0.1, "label smoothing of the training loss (validation loss is never smoothed)")
    clip_grad: float = option(1.0, "gradient norm clipping (0 disables)")
    patience: int = option(8, "stop after this many epochs without a better validation accuracy (0 disables)")
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass: much less memory, about 27% slower (LoRA on VideoMAE-base, CPU)")
    token_keep: float = option(1.0, "share of a VideoMAE clip's tokens each training step keeps, at random (token dropping as in VideoMAE V2: 0.5 about halves a step's time and memory); validation and prediction keep all")
    precision: str = option("auto", "mixed precision: auto = bf16/fp16 on GPUs, bf16 on CPUs with native bf16, else none", PRECISIONS)
    val_data: str | None = option(None, "separate validation data (default: a grouped split of DATA)")
    val_fraction: float = option(0.2, "share of clips (by source video) held out for validation")
    balanced: bool = option(False, "draw training clips so every class is equally likely")
    cache_dir: str = option(str(DEFAULT_CACHE), "where decoded clips and features are cached")
    cache: bool = option(True, "cache decoded frames on disk so later epochs and runs skip decoding")
    cache_frames: int | None = option(None, "frames spread evenly over each clip that sampling picks from, and that the cache keeps (default: twice --num-frames, at least 16)")
    workers: int = option(0, "data loading processes (0: load in the training process)")
    max_minutes: float | None = option(None, "time budget in minutes: the learning-rate schedule is fitted to it, and the best epoch is kept (default: no limit, --epochs ends the run)", aliases=("--minutes",))
    resume: bool = option(False, "continue an interrupted run in --out from its last checkpoint (a finished run trains on only when given a larger --epochs)")
    checkpoint_minutes: float = option(1.0, "save a resumable checkpoint when this many minutes have passed since the last (0: every epoch)")
    seed: int = option(0, "seed for the split, sampling, augmentation and initial weights")
    probe_views: int = option(4, "augmented views per training clip whose features are cached, for --finetune probe")
    mask: str | None = option(None, "hide the background with masks computed once per clip and cached (sam2, person, motion), or 'auto': train without masks and with person (with the pose extra) and motion masks, keep the best validation accuracy (ties: no masks), at one training per candidate; default: no masking; prediction masks new clips the way the run kept", METHODS + ("auto",))
    mask_fill: str = option("black", "what replaces the background under --mask: black, blur (keeps its colours), mean (one fixed grey)", FILLS)
    mask_checkpoint: str = option(DEFAULT_SAM2, "SAM 2 checkpoint (hub id or folder) for --mask sam2")
    sampling: dict = field(default_factory=dict)
    """Fields of `Sampling` to set (num_frames, mode, stride); every other field is the backbone's own
    (a preset's, or the checkpoint's frame count). The resolved sampling is saved in the run."""
    augment: Augment = field(default_factory=Augment)
    lora: LoraSettings = field(default_factory=LoraSettings)
    pose: PoseSettings = field(default_factory=PoseSettings)
    """Settings of the pose preset (``--backbone pose``); its frames come from ``sampling['num_frames']``."""

    def __post_init__(self):
        problems = []
        if not self.data:
            problems.append("no training data given: pass the folder of class folders (or a CSV manifest)")
        for name in ("epochs", "batch_size", "grad_accum", "cache_frames", "probe_views"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr is not None and self.lr <= 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup < 1:
            problems.append(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if not 0 < self.token_keep <= 1:
            problems.append(f"token_keep is the share of tokens kept, in (0, 1], got {self.token_keep}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 < self.val_fraction < 1:
            problems.append(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.patience < 0:
            problems.append(f"patience must be 0 (off) or more, got {self.patience}")
        named = preset(self.backbone)
        if named and self.finetune and self.finetune not in named.finetune:
            allowed = " or ".join(f"--finetune {m}" for m in named.finetune)
            problems.append(f"--finetune {self.finetune} needs pretrained weights; the {named.name} preset trains with {allowed}")
        if self.mask and named and named.trainer == "pose":
            problems.append(f"--mask {self.mask} hides pixels, and the {named.name} preset sees only body landmarks: leave --mask out")
        unknown = sorted(set(self.sampling) - SAMPLING_FIELDS)
        if unknown:
            problems.append(f"sampling has unknown fields {unknown}; accepted: {sorted(SAMPLING_FIELDS)}")
        else:
            try:
                Sampling(**self.sampling)
            except ConfigError as err:
                problems.append(str(err).replace("\n  - ", "; "))
        check(problems, "training configuration")

    @property
    def mode(self) -> str:
        """The fine-tuning mode after defaults: a preset's own, else 'lora' unless asked."""
        named = preset(self.backbone)
        return self.finetune or (named.default_finetune if named else "lora")

    @property
    def masking(self) -> Masking | None:
        """The masking asked for with --mask, or None."""
        if not self.mask or self.mask == "auto":  # auto: each candidate's run has its own
            return None
        return Masking(self.mask, self.mask_fill, checkpoint=self.mask_checkpoint)

    @property
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        named = preset(self.backbone)
        if named:
            return named.lr
        return {"lora": 5e-4, "full": 5e-5, "probe": 1e-3}[self.mode]


@dataclass
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    best_epoch: int
    val_accuracy: float
    val_loss: float
    epochs_run: int
    seconds: float
    skipped: list[tuple[str, str]]
    epochs_asked: int | None = None
    stopped_by: str = "epochs"
    """'epochs' (all ran), 'patience' (early stopping), 'budget' (--max-minutes ended it) or 'asked' (the caller's progress hook)."""
    already_finished: bool = False
    """True when ``--resume`` found the run finished and asked for no more: nothing was trained or written, the figures are its report's."""


def train_config(values: dict) -> TrainConfig:
    """A `TrainConfig` from flat option values, as the command line gives them (``{"stride": 3, "lr": 1e-3, ...}``).

    Options of the nested sections (augmentation, LoRA) fill their own
    dataclasses; sampling options that were given become `TrainConfig.sampling`
    overrides, field by field, so ``--stride 3`` changes only the stride of the
    backbone's own sampling. Options not given keep their defaults.
    """
    import dataclasses

    values = {k: v for k, v in values.items() if not (k == "data" and v is None)}
    if values.get("resume"):
        values = _with_saved_options(values)

    def pick(cls) -> dict:
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in values.items() if k in names}

    sampling = {k: v for k, v in values.items() if k in SAMPLING_FIELDS}
    return TrainConfig(**{**pick(TrainConfig), "sampling": sampling, "augment": Augment(**pick(Augment)),
                          "lora": LoraSettings(**pick(LoraSettings)), "pose": PoseSettings(**pick(PoseSettings))})


_NESTED = ("sampling", "augment", "lora", "pose")


def _with_saved_options(given: dict) -> dict:
    """For ``--resume``: the options the run in ``given['out']`` was started with, and the ones given now on top.

    So ``snapaction train --out RUN --resume`` needs nothing else: data, backbone, sampling
    and every setting come from the run's snapaction.json. A different backbone or mode
    cannot continue the same weights: that is an error naming both.
    """
    from ..errors import ConfigError, RunError
    from ..run import RunInfo

    out = given.get("out", TrainConfig.__dataclass_fields__["out"].default)
    try:
        saved = dict(RunInfo.load(out).config)
    except RunError as err:
        raise ConfigError(f"nothing to resume: {err}") from None
    for name in ("backbone", "finetune"):
        if name in given and given[name] is not None and saved.get(name) not in (None, given[name]):
            raise ConfigError(f"{out} was trained with --{name} {saved[name]}, not {given[name]}: leave --{name} out to "
                              f"continue it, or start a new run with another --out")
    flat = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__ and k not in _NESTED}
    nested = {k: v for name in ("augment", "lora", "pose") for k, v in (saved.get(name) or {}).items()}
    sampling = {k: v for k, v in (saved.get("sampling") or {}).items() if k in SAMPLING_FIELDS}
    return {**flat, **nested, **sampling, **given, "out": out, "resume": True}
