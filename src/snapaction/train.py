"""Fine-tuning: one explicit loop on Accelerate, readable top to bottom.

AdamW on the trainable parameters, linear warmup then cosine decay, label
smoothing (and mixup) in the training loss only, plain cross-entropy for
validation, gradient accumulation and clipping, mixed precision, early
stopping on validation accuracy that keeps the best weights, and a checkpoint
every epoch that `--resume` continues from exactly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .augment import Augment
from .config import check, option, to_dict
from .errors import ConfigError
from .model import DEFAULT_BACKBONE, FINETUNE_MODES, SCRATCH, LoraSettings
from .sampling import Sampling

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "no", "bf16", "fp16")
DEFAULT_CACHE = Path.home() / ".cache" / "snapaction"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run is given. Saved, resolved, in the run's snapaction.json."""

    data: str = ""
    """Training data: a folder of class folders, or a CSV manifest (positional on the command line)."""
    out: str = option("runs/latest", "run folder to write")
    backbone: str = option(DEFAULT_BACKBONE, f"hub id, local folder, or '{SCRATCH}' (small model, random weights)")
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
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass: much less memory, about a third slower")
    precision: str = option("auto", "mixed precision: auto = bf16/fp16 on GPUs, bf16 on CPUs with native bf16, else none", PRECISIONS)
    val_data: str | None = option(None, "separate validation data (default: a grouped split of --data)")
    val_fraction: float = option(0.2, "share of clips (by source video) held out for validation")
    balanced: bool = option(False, "draw training clips so every class is equally likely")
    cache_dir: str = option(str(DEFAULT_CACHE), "where decoded clips and features are cached")
    cache: bool = option(True, "cache decoded frames on disk so later epochs and runs skip decoding")
    cache_frames: int | None = option(None, "frames spread evenly over each clip that sampling picks from, and that the cache keeps (default: twice --num-frames, at least 16)")
    workers: int = option(0, "data loading processes (0: load in the training process)")
    max_minutes: float | None = option(None, "stop training after this many minutes (the best epoch so far is kept)")
    resume: bool = option(False, "continue an interrupted run in --out from its last checkpoint")
    checkpoint_minutes: float = option(1.0, "save a resumable checkpoint when this many minutes have passed since the last (0: every epoch)")
    seed: int = option(0, "seed for the split, sampling, augmentation and initial weights")
    probe_views: int = option(4, "augmented views per training clip whose features are cached, for --finetune probe")
    sampling: Sampling | None = None
    """Frame sampling; None takes the backbone's own (its frame count, or the scratch preset's)."""
    augment: Augment = field(default_factory=Augment)
    lora: LoraSettings = field(default_factory=LoraSettings)

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
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 < self.val_fraction < 1:
            problems.append(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.patience < 0:
            problems.append(f"patience must be 0 (off) or more, got {self.patience}")
        if self.backbone == SCRATCH and self.finetune in ("lora", "probe"):
            problems.append(f"--finetune {self.finetune} needs pretrained weights; the {SCRATCH} preset trains in full (--finetune full)")
        check(problems, "training configuration")

    @property
    def mode(self) -> str:
        """The fine-tuning mode after defaults: 'full' for scratch, else 'lora' unless asked."""
        return self.finetune or ("full" if self.backbone == SCRATCH else "lora")

    @property
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.backbone == SCRATCH:
            return 1e-3
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


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: linear warmup to 1, then cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def is_better(accuracy: float, loss: float, best_accuracy: float, best_loss: float) -> bool:
    """Whether an epoch beats the best so far: higher validation accuracy, or equal with lower loss
    (small validation sets saturate their accuracy early; the loss still tells epochs apart)."""
    return accuracy > best_accuracy or (accuracy == best_accuracy and loss < best_loss)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against probability targets, float (B, K) each; mean over the batch."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def smooth_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets (B, K) with `smoothing` of the mass spread evenly over all classes."""
    onehot = F.one_hot(labels, num_classes).float()
    return onehot * (1.0 - smoothing) + smoothing / num_classes


def resolve_precision(precision: str, device: torch.device) -> str:
    """Accelerate's mixed_precision value for `precision` on `device`."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "no"
        return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "no"
    return "no"


def train(cfg: TrainConfig) -> TrainResult:
    """Train a run as `cfg` says and write its folder; returns the best epoch's metrics."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from .cache import ClipCache
    from .dataset import ClipDataset, ClipTransform, EpochSampler, collate_clips, prepare_data
    from .model import apply_lora, count_parameters, load_backbone, preprocessing_for, resolve_sampling
    from .run import RUN_FILE, RunInfo, plot_curves, write_metrics

    started = time.monotonic()
    run_dir = Path(cfg.out)
    checkpoint_dir = run_dir / "checkpoint"
    if not cfg.resume and (run_dir / RUN_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out")
    if cfg.resume and not (checkpoint_dir / "state.json").exists():
        raise ConfigError(f"nothing to resume in {run_dir}: it has no checkpoint/state.json")

    probe_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = Accelerator(
        mixed_precision=resolve_precision(cfg.precision, probe_device),
        gradient_accumulation_steps=cfg.grad_accum,
    )
    set_seed(cfg.seed)
    # Denormal floats appear once the loss nears the label-smoothing floor and slow CPU kernels several-fold.
    torch.set_flush_denormal(True)
    data = prepare_data(cfg.data, cfg.val_data, cfg.val_fraction, cfg.seed)
    model, new_modules = load_backbone(cfg.backbone, data.classes)
    sampling = resolve_sampling(cfg.backbone, model, cfg.sampling, cfg.cache_frames)
    preprocessing = preprocessing_for(cfg.backbone)
    if cfg.mode == "probe":
        from .probe import train_probe

        return train_probe(cfg, data, model, sampling, preprocessing, accelerator, started)
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    if cfg.mode == "lora":
        model = apply_lora(model, new_modules, cfg.lora)
    trainable, total = count_parameters(model)
    log.info("%s: %s of %s parameters trainable (%.2f%%), mode %s", cfg.backbone, f"{trainable:,}", f"{total:,}", 100 * trainable / total, cfg.mode)

    cache_frames = sampling.grid
    cache = ClipCache(Path(cfg.cache_dir) / "clips") if cfg.cache else None
    labels = {c: i for i, c in enumerate(data.classes)}
    common = dict(classes=data.classes, sampling=sampling, size=preprocessing.size, cache=cache, cache_frames=cache_frames)
    train_set = ClipDataset(data.train, train=True, transform=ClipTransform(preprocessing, cfg.augment), seed=cfg.seed, **common)
    val_set = ClipDataset(data.val, train=False, transform=ClipTransform(preprocessing), **common)
    sampler = EpochSampler([labels[s.label] for s in data.train], cfg.seed, cfg.balanced)
    loader_args = dict(batch_size=cfg.batch_size, collate_fn=collate_clips, num_workers=cfg.workers)
    train_loader = torch.utils.data.DataLoader(train_set, sampler=sampler, **loader_args)
    val_loader = torch.utils.data.DataLoader(val_set, shuffle=False, **loader_args)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.peak_lr, weight_decay=cfg.weight_decay)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = int(cfg.warmup * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup_steps, total_steps))
    accelerator.register_for_checkpointing(scheduler)

    state = {"epoch": 0, "best_accuracy": -1.0, "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "rows": [], "seconds": 0.0}
    if cfg.resume:
        import json

        accelerator.load_state(str(checkpoint_dir))
        state = json.loads((checkpoint_dir / "state.json").read_text())
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])

    info = RunInfo(
        classes=data.classes,
        backbone=cfg.backbone,
        finetune=cfg.mode,
        weights="adapter" if cfg.mode == "lora" else "model",
        sampling=to_dict(sampling),
        preprocessing=preprocessing.to_dict(),
        config={**to_dict(replace(cfg, sampling=sampling)), "cache_frames": cache_frames, "lr": cfg.peak_lr, "finetune": cfg.mode, "clip_seconds": data.clip_seconds},
        skipped=[{"path": p, "reason": r} for p, r in data.skipped],
    )
    num_classes = len(data.classes)
    epoch_started = time.monotonic() - state["seconds"]
    last_checkpoint = time.monotonic()
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.monotonic()
        # Accelerate's loader sets its sampler's epoch from its own counter, which restarts at 0 on
        # resume: give it the real epoch so a resumed run replays exactly the same batches.
        train_loader.set_epoch(epoch)
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        mix_rng = np.random.default_rng([cfg.seed, epoch, 2])
        model.train()
        losses = []
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not accelerator.is_local_main_process)
        for batch in bar:
            if skip_batch(batch, accelerator):  # every clip of a batch failed to decode (each was reported)
                continue
            videos, targets = batch
            soft = smooth_targets(targets, num_classes, cfg.label_smoothing)
            videos, soft = cfg.augment.mix(videos, soft, mix_rng)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    logits = model(pixel_values=videos).logits
                loss = soft_cross_entropy(logits, soft)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.clip_grad > 0:
                    accelerator.clip_grad_norm_(params, cfg.clip_grad)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        val = evaluate(model, val_loader, accelerator)
        train_loss = float(accelerator.gather_for_metrics(torch.tensor([np.mean(losses) if losses else math.nan])).mean())
        row = {
            "epoch": epoch + 1,
            "train_loss": round(train_loss, 5),
            "val_loss": round(val["loss"], 5),
            "val_accuracy": round(val["accuracy"], 5),
            "lr": f"{optimizer.param_groups[0]['lr']:.3e}",
            "seconds": round(time.monotonic() - t0, 2),
        }
        state["rows"].append(row)
        improved = is_better(val["accuracy"], val["loss"], state["best_accuracy"], state["best_loss"])
        if improved:
            state.update(best_accuracy=val["accuracy"], best_loss=val["loss"], best_epoch=epoch + 1, bad_epochs=0)
            if accelerator.is_main_process:
                save_weights(accelerator.unwrap_model(model), run_dir, cfg.mode)
                info.save(run_dir)
        else:
            state["bad_epochs"] += 1
        accelerator.print(
            f"epoch {epoch + 1:3d}  train loss {train_loss:.4f}  val loss {val['loss']:.4f}  "
            f"val acc {val['accuracy']:.3f}  lr {row['lr']}  {row['seconds']:.1f}s" + ("  *" if improved else "")
        )
        state["epoch"] = epoch + 1
        state["seconds"] = time.monotonic() - epoch_started
        stop = cfg.patience and state["bad_epochs"] >= cfg.patience
        out_of_time = cfg.max_minutes is not None and state["seconds"] > cfg.max_minutes * 60
        if accelerator.is_main_process:
            write_metrics(run_dir, state["rows"])
        last = stop or out_of_time or epoch + 1 == cfg.epochs
        if last or time.monotonic() - last_checkpoint >= cfg.checkpoint_minutes * 60:
            save_checkpoint(accelerator, checkpoint_dir, state)
            last_checkpoint = time.monotonic()
        if stop or out_of_time:
            accelerator.print(f"stopping: {'no better validation accuracy for %d epochs' % cfg.patience if stop else 'time budget reached'}")
            break

    result = TrainResult(run_dir, state["best_epoch"], state["best_accuracy"], state["best_loss"], state["epoch"], time.monotonic() - started, data.skipped)
    if accelerator.is_main_process:
        write_report(run_dir, result, state["rows"], trainable, total)
        plot_curves(run_dir, state["rows"])
    accelerator.wait_for_everyone()
    return result


def skip_batch(batch, accelerator) -> bool:
    """True when this batch is empty here, or, with several processes, on any of them: all
    processes skip the step together, since one skipping alone would leave the others waiting
    for its gradients (or its gathered metrics). The other processes' clips of that step are
    left out too: a rare loss, only for clips that probe well but fail to decode later."""
    empty = batch is None
    if accelerator.num_processes == 1:
        return empty
    flag = torch.tensor([1 if empty else 0], device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def enable_checkpointing(model) -> None:
    """Gradient checkpointing on a transformers backbone (non-reentrant: works with a frozen input layer)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(f"backbone {type(model).__name__} does not support --gradient-checkpointing")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


@torch.no_grad()
def evaluate(model, loader, accelerator) -> dict:
    """Plain (unsmoothed) cross-entropy and accuracy over `loader`, gathered across processes."""
    model.eval()
    all_logits, all_labels = [], []
    for batch in loader:
        if skip_batch(batch, accelerator):
            continue
        videos, labels = batch
        with accelerator.autocast():
            logits = model(pixel_values=videos).logits.float()
        logits, labels = accelerator.gather_for_metrics((logits, labels))
        all_logits.append(logits)
        all_labels.append(labels)
    if not all_logits:
        return {"loss": math.nan, "accuracy": 0.0}
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (logits.argmax(-1) == labels).float().mean().item(),
    }


def save_weights(unwrapped, run_dir: Path, mode: str) -> None:
    """Write the trained weights: a PEFT adapter (base weights never copied) or the full model."""
    import tempfile

    from .run import move_files_into, replace_dir

    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=".weights-"))
    if mode == "lora":
        unwrapped.save_pretrained(tmp)
        move_files_into(tmp, run_dir)
    else:
        unwrapped.save_pretrained(tmp)
        replace_dir(tmp, run_dir / "model")


def save_checkpoint(accelerator, checkpoint_dir: Path, state: dict) -> None:
    """Model, optimizer, scheduler, random states and loop state, replaced as a whole."""
    import tempfile

    from .run import atomic_json, replace_dir

    tmp = Path(tempfile.mkdtemp(dir=checkpoint_dir.parent, prefix=".checkpoint-")) if accelerator.is_main_process else None
    tmp_list = [str(tmp) if tmp else None]
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(tmp_list)
    tmp = Path(tmp_list[0])
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_json(tmp / "state.json", state)
        replace_dir(tmp, checkpoint_dir)
    accelerator.wait_for_everyone()


def write_report(run_dir: Path, result: TrainResult, rows: list[dict], trainable: int, total: int) -> None:
    """``report.json``: the best epoch's validation metrics and how the run went."""
    from .run import atomic_json

    atomic_json(
        run_dir / "report.json",
        {
            "best_epoch": result.best_epoch,
            "val_accuracy": result.val_accuracy,
            "val_loss": result.val_loss,
            "epochs_run": result.epochs_run,
            "seconds": round(result.seconds, 1),
            "trainable_parameters": trainable,
            "total_parameters": total,
            "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
        },
    )
