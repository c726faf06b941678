"""What every training mode does once before its loop: check the run folder, start Accelerate, load data and model.

`prepare(cfg)` returns a `Setup`; the full/LoRA loop (`snapaction.training.loop`)
and probe mode (`snapaction.training.linear_probe`) both start from it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import to_dict
from ..errors import ConfigError
from .config import TrainConfig
from .recipe import make_accelerator

log = logging.getLogger(__name__)


@dataclass
class Setup:
    """A run ready to train: its config, Accelerator, data, model, sampling, preprocessing and run-folder info."""

    cfg: TrainConfig
    run_dir: Path
    accelerator: object
    data: object
    """`snapaction.data.dataset.Data`: classes, training and validation clips, skipped clips."""
    model: torch.nn.Module
    new_modules: list[str]
    sampling: object
    preprocessing: object
    info: object
    """`snapaction.run.RunInfo` written beside the weights."""
    started: float = field(default_factory=time.monotonic)
    masker: object = None
    """`snapaction.mask.Masker` when the run hides the background (--mask), else None."""

    def datasets(self, train_augment=True):
        """(training, validation) `ClipDataset`s; training clips augmented as the config says."""
        from ..data.cache import ClipCache
        from ..data.dataset import ClipDataset, ClipTransform

        cfg = self.cfg
        cache = ClipCache(Path(cfg.cache_dir) / "clips") if cfg.cache else None
        common = dict(classes=self.data.classes, sampling=self.sampling, size=self.preprocessing.size, cache=cache, masker=self.masker)
        train = ClipDataset(self.data.train, train=True, seed=cfg.seed,
                            transform=ClipTransform(self.preprocessing, cfg.augment if train_augment else None), **common)
        val = ClipDataset(self.data.val, train=False, transform=ClipTransform(self.preprocessing), **common)
        return train, val


def check_out(cfg: TrainConfig) -> tuple[Path, TrainConfig]:
    """The run folder, after checking that it can be written (or resumed) as asked, and the config to run.

    What a kill left half-written is finished or removed first. ``--resume`` on
    a run stopped before its first checkpoint starts it over in the same folder
    (and says so): the weights it kept came from a run that cannot be continued
    exactly, and a fresh run would refuse the folder, so this is the way on.
    """
    from ..run import has_checkpoint, is_run, recover_partial_writes

    run_dir = Path(cfg.out)
    if os.environ.get("RANK", "0") == "0":  # with several processes, the first one tidies and the others wait for it
        for line in recover_partial_writes(run_dir):
            print(f"{run_dir}: {line}", flush=True)
    else:
        _wait_for_tidy(run_dir)
    if not cfg.resume and is_run(run_dir):
        raise ConfigError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out")
    if cfg.resume and not has_checkpoint(run_dir):
        if not is_run(run_dir):
            raise ConfigError(f"nothing to resume in {run_dir}: it holds no run; start one with --out {run_dir} (without --resume)")
        from ..run import read_report

        why = ("keeps no checkpoint to continue from (probe mode writes none)" if read_report(run_dir)
               else "was stopped before its first checkpoint, so it cannot be continued exactly")
        print(f"{run_dir} {why}: training it again from the start, in the same folder, with the same options", flush=True)
        cfg = dataclasses.replace(cfg, resume=False)
    return run_dir, cfg


def finished_result(cfg: TrainConfig):
    """For ``--resume``: the run in ``cfg.out`` as it ended (a `TrainResult` from its report, ``already_finished``),
    when it finished training and `cfg` asks for no more; nothing is touched then. Else None: training goes on.

    More is a larger ``--epochs`` than the run was asked for, or, for a run its ``--max-minutes`` ended, a larger
    budget. A run stopped by Ctrl-C, a kill, or the studio's Stop has not finished.
    """
    import math

    from ..run import RunInfo, checkpoint_state, is_run, read_report
    from .config import TrainResult
    from .recipe import asks_for_more

    run_dir = Path(cfg.out)
    report = read_report(run_dir) if is_run(run_dir) else {}
    if not report:
        return None
    state = checkpoint_state(run_dir)
    finished = state.get("finished") if state else None
    if finished is None:  # older checkpoints, and probe mode (no checkpoint): the report is written when training ends
        ended = state["epoch"] == report.get("epochs_run") if state else RunInfo.load(run_dir).finetune == "probe"
        if not ended or report.get("stopped_by") == "asked":
            return None
        finished = {"stopped_by": report.get("stopped_by", "epochs"), "max_minutes": report.get("max_minutes"),
                    "epochs_asked": report.get("epochs_asked") or RunInfo.load(run_dir).config.get("epochs", report["epochs_run"])}
    if asks_for_more(cfg, finished):
        return None
    loss = report.get("val_loss")
    return TrainResult(run_dir, report["best_epoch"], report["val_accuracy"], math.nan if loss is None else loss, report["epochs_run"],
                       report.get("seconds", 0.0), [(s["path"], s["reason"]) for s in report.get("skipped", [])],
                       epochs_asked=finished["epochs_asked"], stopped_by=finished["stopped_by"], already_finished=True)


def _wait_for_tidy(run_dir: Path, timeout: float = 60.0) -> None:
    """Wait until the first process has finished `recover_partial_writes` (no temporary folders left)."""
    end = time.monotonic() + timeout
    while (any(run_dir.glob(".checkpoint-*")) or any(run_dir.glob("*.old"))) and time.monotonic() < end:
        time.sleep(0.2)


def prepare(cfg: TrainConfig) -> Setup:
    """Everything before the first epoch, once: folder checks, Accelerator, seed, data, model, sampling, preprocessing."""
    from accelerate.utils import set_seed

    from ..data.dataset import prepare_data
    from ..models.backbone import load_backbone, preprocessing_for, resolve_backbone, resolve_sampling
    from ..models.presets import preset
    from ..run import RunInfo, clip_keys

    started = time.monotonic()
    run_dir, cfg = check_out(cfg)
    if preset(cfg.backbone) is None:  # a backbone that is not on this machine is said before the data is read
        resolve_backbone(cfg.backbone)
    accelerator = make_accelerator(cfg.precision, cfg.grad_accum)
    set_seed(cfg.seed)
    data = prepare_data(cfg.data, cfg.val_data, cfg.val_fraction, cfg.seed)
    model, new_modules = load_backbone(cfg.backbone, data.classes)
    sampling = resolve_sampling(cfg.backbone, model, cfg.sampling, cfg.cache_frames)
    preprocessing = preprocessing_for(cfg.backbone)
    accelerator.print(f"sampling: {sampling.describe()}")
    masker = None
    if cfg.masking is not None:  # every clip's masks computed (or read from the cache) once, before the first epoch
        from ..mask.clips import mask_training_data

        with accelerator.main_process_first():  # one process computes, the others read its cache entries
            masker = mask_training_data(data, cfg.masking, cfg.cache_dir, cfg.data, sampling.grid, accelerator.print)
    info = RunInfo(
        classes=data.classes,
        backbone=cfg.backbone,
        finetune=cfg.mode,
        weights={"lora": "adapter", "full": "model", "probe": "head"}[cfg.mode],
        sampling=to_dict(sampling),
        preprocessing=preprocessing.to_dict(),
        config={**to_dict(cfg), "sampling": to_dict(sampling), "cache_frames": sampling.grid, "lr": cfg.peak_lr,
                "finetune": cfg.mode, "clip_seconds": data.clip_seconds},
        skipped=[{"path": p, "reason": r} for p, r in data.skipped],
        clips=clip_keys(data),
        masking=masker.masking.to_dict() if masker else {},
    )
    return Setup(cfg, run_dir, accelerator, data, model, new_modules, sampling, preprocessing, info, started, masker)
