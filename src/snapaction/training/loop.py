"""Fine-tuning: one explicit loop on Accelerate, readable top to bottom.

AdamW on the trainable parameters, linear warmup then cosine decay, label
smoothing (and mixup) in the training loss only, plain cross-entropy for
validation, gradient accumulation and clipping, mixed precision, early
stopping on validation accuracy that keeps the best weights, and a resumable
checkpoint that `--resume` continues from exactly.

`train(cfg)` is setup (`snapaction.training.setup.prepare`, once) -> `fit` (the
loop, LoRA or full) or `linear_probe.fit` (probe mode) -> the report.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, Interrupted
from .config import TrainConfig, TrainResult
from .recipe import asks_for_more, fit_to_budget, is_better, lr_factor, smooth_targets, soft_cross_entropy
from .setup import Setup, prepare

log = logging.getLogger(__name__)

clock = time.monotonic
"""The loop's clock (tests give it a fake one to play a slow machine)."""


def train(cfg: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Train a run as `cfg` says and write its folder; returns the best epoch's metrics.

    `progress`, when given, is called with each event of the run (see `Progress`); when it returns
    True the run stops as early stopping does: the step in hand ends, the epoch is validated, and the
    folder is written in full with ``stopped_by='asked'``. The pose preset trains in one go and reports no events.
    """
    from ..models.presets import preset

    named = preset(cfg.backbone)
    from ..hf import publish

    if named is not None and named.trainer == "pose":
        from . import pose

        result = pose.fit(cfg)
        publish(result.run_dir)
        return result
    if cfg.resume:
        from .setup import finished_result

        done = finished_result(cfg)
        if done is not None:  # finished, and nothing more asked for: nothing to do, nothing changed
            return done
    if cfg.mask == "auto":  # one training per candidate masking, the best kept
        from .mask_auto import train_auto

        return train_auto(cfg, progress, train)
    setup = prepare(cfg)
    if cfg.mode == "probe":
        from . import linear_probe

        result = linear_probe.fit(setup, progress)
    else:
        result = fit(setup, progress)
    if setup.accelerator.is_main_process:  # transformers' files and the model card (snapaction.hf, snapaction.card)
        publish(result.run_dir, setup.data)
    setup.accelerator.wait_for_everyone()
    return result


Progress = Callable[[dict], "bool | None"]
"""A training run's listener: called with ``{"event": "step", "epoch", "step", "steps"}`` after every batch
(`step` counts this epoch's batches) and ``{"event": "epoch", "planned", "best_epoch", "best_accuracy", **the
metrics.csv row}`` after every epoch (epochs count from 1); a True answer asks the run to stop. It is called on
every process: with several, each must give the same answer (the studio trains in one process)."""


def fit(setup: Setup, progress: Progress | None = None) -> TrainResult:
    """The training loop of LoRA and full fine-tuning: epochs of steps, validation, best-weights saving, checkpoints."""
    from ..data.dataset import EpochSampler, collate_clips
    from ..models.backbone import apply_lora, count_parameters
    from ..models.tokens import check_token_keep, drop_mask
    from tqdm.auto import tqdm

    from ..run import load_checkpoint, plot_curves, save_checkpoint, save_weights, write_metrics, write_train_report

    cfg, accelerator, data, run_dir, info = setup.cfg, setup.accelerator, setup.data, setup.run_dir, setup.info
    model = setup.model
    tokens = check_token_keep(model, cfg.token_keep, cfg.backbone)  # None: every token, every step
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    if cfg.mode == "lora":
        model = apply_lora(model, setup.new_modules, cfg.lora)
    trainable, total = count_parameters(model)
    log.info("%s: %s of %s parameters trainable (%.2f%%), mode %s", cfg.backbone, f"{trainable:,}", f"{total:,}", 100 * trainable / total, cfg.mode)

    train_set, val_set = setup.datasets()
    labels = {c: i for i, c in enumerate(data.classes)}
    sampler = EpochSampler([labels[s.label] for s in data.train], cfg.seed, cfg.balanced)
    loader_args = dict(batch_size=cfg.batch_size, collate_fn=collate_clips, num_workers=cfg.workers)
    train_loader = torch.utils.data.DataLoader(train_set, sampler=sampler, **loader_args)
    val_loader = torch.utils.data.DataLoader(val_set, shuffle=False, **loader_args)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.peak_lr, weight_decay=cfg.weight_decay)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum)
    # Warmup + cosine are laid out over `planned` epochs: --epochs, or what --max-minutes allows at the pace
    # measured so far, whichever ends first (re-planned after every epoch), so a run the budget ends still
    # ends at the bottom of its schedule rather than in the middle of it.
    state = {"epoch": 0, "best_accuracy": -1.0, "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "rows": [], "seconds": 0.0,
             "planned": cfg.epochs, "stopped_by": "epochs"}

    def lr_at(step: int) -> float:
        total = state["planned"] * steps_per_epoch
        return lr_factor(step, int(cfg.warmup * total), total)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    accelerator.register_for_checkpointing(scheduler)
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes is not None else None
    last_epoch = cfg.epochs

    if cfg.resume:
        state = load_checkpoint(accelerator, run_dir)
        state.setdefault("stopped_by", "epochs")
        finished = state.pop("finished", None)  # the run had ended; `train` came here only to write its end, or to go further
        if finished and not asks_for_more(cfg, finished):
            last_epoch = state["epoch"]  # its report was not written yet (stopped just before): write it, train nothing
        else:
            if finished and state["stopped_by"] == "patience":  # more epochs were asked for: early stopping counts afresh
                state["bad_epochs"] = 0
            state["stopped_by"] = "epochs"
        # the schedule over the epochs asked for now (the same plan as before, unless --epochs or --max-minutes changed)
        state["planned"] = fit_to_budget(cfg.epochs, [r["seconds"] for r in state["rows"]], budget_s)
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])

    failures: dict[str, str] = dict(state.get("failures", {}))  # clips that failed to decode: path -> reason
    for dataset in (train_set, val_set):  # a resumed run does not try them again either
        dataset.failed.update({i: failures[str(s.path)] for i, s in enumerate(dataset.samples) if str(s.path) in failures})
    state["failures"] = failures
    if accelerator.is_main_process:  # from the start: a stop before the first epoch ends (or before a continuation's
        if failures:                 # first) is resumed with the options given now
            info.skipped = [{"path": p, "reason": r} for p, r in list(data.skipped) + sorted(failures.items())]
        info.save(run_dir)
    num_classes = len(data.classes)
    epoch_started = clock() - state["seconds"]
    last_checkpoint = clock()
    checkpointed = state["epoch"] if cfg.resume else 0  # the epoch the newest checkpoint holds
    running = state["epoch"] + 1  # the epoch in hand
    try:
        for epoch in range(state["epoch"], last_epoch):
            t0 = clock()
            running = epoch + 1
            # Accelerate's loader sets its sampler's epoch from its own counter, which restarts at 0 on
            # resume: give it the real epoch so a resumed run replays exactly the same batches.
            train_loader.set_epoch(epoch)
            sampler.set_epoch(epoch)
            train_set.set_epoch(epoch)
            mix_rng = np.random.default_rng([cfg.seed, epoch, 2])
            token_rng = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)  # per epoch: a resumed run drops the same tokens
            model.train()
            losses, asked = [], False
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{state['planned']}", leave=False, disable=not accelerator.is_local_main_process)
            for videos, targets, failed in bar:
                note_failures(train_set, failed, failures)
                if skip_batch(videos, accelerator):  # every clip of a batch failed to decode (each was reported)
                    continue
                soft = smooth_targets(targets, num_classes, cfg.label_smoothing)
                videos, soft = cfg.augment.mix(videos, soft, mix_rng)
                with accelerator.accumulate(model):
                    with accelerator.autocast():
                        dropped = {} if tokens is None else {"bool_masked_pos": drop_mask(len(videos), tokens, cfg.token_keep, token_rng).to(videos.device)}
                        logits = model(pixel_values=videos, **dropped).logits
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
                if progress and progress({"event": "step", "epoch": epoch + 1, "step": len(losses), "steps": len(train_loader)}):
                    asked = True
                    break
            val = validate(model, val_loader, accelerator, lambda failed: note_failures(val_set, failed, failures))
            train_loss = float(accelerator.gather_for_metrics(torch.tensor([np.mean(losses) if losses else math.nan])).mean())
            row = {
                "epoch": epoch + 1,
                "train_loss": round(train_loss, 5),
                "val_loss": round(val["loss"], 5),
                "val_accuracy": round(val["accuracy"], 5),
                "lr": f"{optimizer.param_groups[0]['lr']:.3e}",
                "seconds": round(clock() - t0, 2),
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
            state["seconds"] = clock() - epoch_started
            state["planned"] = fit_to_budget(cfg.epochs, [r["seconds"] for r in state["rows"]], budget_s)
            if progress and progress({"event": "epoch", **row, "planned": state["planned"], "best_epoch": state["best_epoch"],
                                      "best_accuracy": state["best_accuracy"]}):
                asked = True
            stop = cfg.patience and state["bad_epochs"] >= cfg.patience
            out_of_time = state["planned"] <= epoch + 1 < cfg.epochs  # the budget has no room for another epoch
            if accelerator.is_main_process:
                write_metrics(run_dir, state["rows"])
            last = stop or out_of_time or asked or epoch + 1 == cfg.epochs
            if stop or out_of_time or asked:
                state["stopped_by"] = "asked" if asked else "patience" if stop else "budget"
            if last or clock() - last_checkpoint >= cfg.checkpoint_minutes * 60:
                ended = last and not asked  # the run is finished: `--resume` says so, unless asked for more
                save_checkpoint(accelerator, run_dir, {**state, **({"finished": finished_record(cfg, state)} if ended else {})})
                checkpointed = state["epoch"]
                last_checkpoint = clock()
            if stop or out_of_time or asked:
                accelerator.print("stopping: " + ("asked to stop" if asked else f"no better validation accuracy for {cfg.patience} epochs" if stop else
                                  f"the {cfg.max_minutes:g}-minute budget has no room for another epoch at "
                                  f"{state['seconds'] / (epoch + 1):.1f} s each; ran {epoch + 1} of the {cfg.epochs} asked for, "
                                  "with the learning rate laid out to end here"))
                break
    except KeyboardInterrupt:  # Ctrl-C: say what is kept and how to go on (the command prints it), then stop as asked
        raise Interrupted(interrupted_message(run_dir, state, checkpointed, running) if accelerator.is_main_process else "") from None

    skipped = list(data.skipped) + all_failures(accelerator, failures)
    result = TrainResult(run_dir, state["best_epoch"], state["best_accuracy"], state["best_loss"], state["epoch"],
                         clock() - setup.started, skipped, epochs_asked=cfg.epochs, stopped_by=state["stopped_by"])
    if accelerator.is_main_process:
        if len(skipped) > len(data.skipped) and state["best_epoch"]:
            info.skipped = [{"path": p, "reason": r} for p, r in skipped]
            info.save(run_dir)
        write_train_report(run_dir, result, state["rows"], trainable, total,
                           extra={"epochs_asked": cfg.epochs, "stopped_by": state["stopped_by"], "max_minutes": cfg.max_minutes,
                                  "precision": accelerator.mixed_precision})
        plot_curves(run_dir, state["rows"])
    accelerator.wait_for_everyone()
    return result


def interrupted_message(run_dir, state: dict, checkpointed: int, running: int | None = None) -> str:
    """What an interrupted run has kept, and the command that continues it (`running`: the epoch in hand)."""
    import shlex

    kept = (f"the best epoch so far ({state['best_epoch']}, validation accuracy {state['best_accuracy']:.3f}) is saved in {run_dir}"
            if state["best_epoch"] else f"no epoch finished, so {run_dir} holds no weights yet")
    command = f"snapaction train --out {shlex.quote(str(run_dir))} --resume"
    if checkpointed:
        how = f"continue from the checkpoint after epoch {checkpointed} with: {command}"
    else:
        how = f"no checkpoint was written yet, so it starts over in the same folder, with the same data and options, with: {command}"
    running = running or state["epoch"] + 1
    when = f"after epoch {running}" if state["epoch"] >= running else f"during epoch {running}"  # (a stop in its checkpoint)
    return f"interrupted {when}: {kept}; {how}"


def finished_record(cfg: TrainConfig, state: dict) -> dict:
    """What a finished run's last checkpoint keeps of how it ended, for `--resume` to tell a finished run from a stopped one."""
    return {"stopped_by": state["stopped_by"], "epoch": state["epoch"], "epochs_asked": cfg.epochs, "max_minutes": cfg.max_minutes}


def note_failures(dataset, failed: list, failures: dict[str, str]) -> None:
    """Record the clips of a batch that failed to decode: in the run's list, and in `dataset` so that
    no later epoch decodes them again (data loading workers start each epoch from the dataset as it is)."""
    for failure in failed:
        dataset.failed[failure.index] = failure.reason
        failures.setdefault(failure.path, f"failed to decode during training, left out from then on: {failure.reason}")


def all_failures(accelerator, failures: dict[str, str]) -> list[tuple[str, str]]:
    """(path, reason) for the clips that failed to decode in any process, each once."""
    found = [failures]
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        found = gather_object([failures])
    merged: dict[str, str] = {}
    for part in found:
        merged.update(part)
    return sorted(merged.items())


def skip_batch(videos, accelerator) -> bool:
    """True when this batch is empty here, or, with several processes, on any of them: all
    processes skip the step together, since one skipping alone would leave the others waiting
    for its gradients (or its gathered metrics). The other processes' clips of that step are
    left out too: a rare loss, only for clips that probe well but fail to decode later."""
    empty = videos is None
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
def validate(model, loader, accelerator, on_failed=None) -> dict:
    """Plain (unsmoothed) cross-entropy and accuracy over `loader`, gathered across processes.

    `on_failed` is called with the `ClipFailure`s of each batch."""
    model.eval()
    all_logits, all_labels = [], []
    for videos, labels, failed in loader:
        if on_failed is not None:
            on_failed(failed)
        if skip_batch(videos, accelerator):
            continue
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
