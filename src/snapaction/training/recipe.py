"""The training recipe as small pure functions: schedule, best-epoch rule, losses, precision."""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


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
    """Accelerate's mixed_precision value for `precision` on `device`.

    On a CPU, ``auto`` is bf16 only where the CPU has native bf16 and its bf16 gradients pass
    `snapaction.engines.cpu.bf16_training_problem`'s check; an explicit ``bf16`` that fails the check is refused."""
    from ..engines.cpu import bf16_training_problem, has_native_bf16
    from ..errors import ConfigError

    if device.type == "cuda":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if precision == "auto" else precision
    if device.type != "cpu":
        return "no" if precision == "auto" else precision
    if precision == "auto" and not has_native_bf16():
        return "no"
    if precision in ("auto", "bf16"):
        problem = bf16_training_problem()
        if problem and precision == "bf16":
            raise ConfigError(f"--precision bf16: {problem}, so a model trained in bf16 here learns from wrong "
                              "gradients; train with --precision no (fp32) or auto")
        if problem:
            log.warning("training in fp32, not bf16: %s", problem)
            return "no"
        return "bf16"
    return precision


def asks_for_more(cfg, finished: dict) -> bool:
    """True when `cfg` asks a finished run for more: a larger --max-minutes for a run its budget ended (at the
    same budget it would end again at once), else a larger --epochs than it was asked for."""
    if finished["stopped_by"] == "budget":
        budget = finished.get("max_minutes")
        return cfg.max_minutes is None or budget is None or cfg.max_minutes > budget
    return cfg.epochs > finished["epochs_asked"]


def fit_to_budget(epochs_asked: int, epoch_seconds: list[float], budget_s: float | None) -> int:
    """Epochs the learning-rate schedule is laid out for: all `epochs_asked`, or as many as the time budget
    allows at the pace of the epochs so far, whichever ends first (never fewer than have run).

    The pace is the median of the last five epochs, leaving out the first while there are others
    (it also decodes every clip into the cache, so it is slower than the rest); after the first
    epoch alone the plan stays as asked unless the budget has room for at most one more.
    """
    done = len(epoch_seconds)
    if budget_s is None or done == 0:
        return epochs_asked
    recent = epoch_seconds[1:] if done > 1 else epoch_seconds
    pace = float(sorted(recent[-5:])[len(recent[-5:]) // 2])
    left = budget_s - sum(epoch_seconds)
    fits = max(done, min(epochs_asked, done + int(left // max(pace, 1e-9))))
    if done == 1 and fits > 2:  # the first epoch alone overstates the pace: re-plan from the second on,
        return epochs_asked     # unless even it says the budget is nearly spent
    return fits


def make_accelerator(precision: str, grad_accum: int):
    """The Accelerator of a training loop (fine-tuning or pretraining), with denormal floats flushed.

    Launched as several processes without CUDA (torchrun, ``accelerate launch --multi_gpu``), accelerate joins
    them (gloo) only when told ``cpu=True``; otherwise each process silently trains a model of its own into the
    same folder. The precision is chosen for the device before the Accelerator exists, as it can be set only once.
    """
    import os

    import numpy as np
    from accelerate import Accelerator

    from accelerate.state import AcceleratorState

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    joined_on_cpu = device.type == "cpu" and int(os.environ.get("WORLD_SIZE", "1")) > 1
    mixed_precision = resolve_precision(precision, device)
    # Accelerate keeps its state per process and refuses a second Accelerator of another precision ("AcceleratorState
    # has already been initialized"), so a program (the studio, the tests, a notebook) that trains twice with different
    # precisions would fail on its second run. The process group (PartialState) is kept; only the precision state goes.
    if AcceleratorState._shared_state and AcceleratorState._shared_state.get("_mixed_precision") != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(cpu=joined_on_cpu, mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum)
    # Denormal floats appear once a loss nears its floor and slow CPU kernels several-fold. numpy reads its
    # float limits lazily and warns when it first does so with denormals flushed: read them first.
    np.finfo(np.float32), np.finfo(np.float64)
    torch.set_flush_denormal(True)
    return accelerator
