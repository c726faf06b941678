"""Training with ``--mask auto``: one run per candidate masking (`snapaction.mask.auto`), the best one kept in --out."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from ..errors import ConfigError, SnapActionError
from .config import TrainConfig, TrainResult


def train_auto(cfg: TrainConfig, progress, train) -> TrainResult:
    """Train `cfg` once per `auto.candidates()` (with `train`, the ordinary entry point) under RUN/mask-trials/,
    keep the best by validation accuracy (ties to no mask) as the run in ``cfg.out``, and say which and why."""
    from ..mask import auto
    from ..run import RunInfo, is_run, read_report

    out = Path(cfg.out)
    if cfg.resume:
        raise ConfigError(f"--mask auto compares whole trainings and cannot resume one: continue the kept run with "
                          f"`snapaction train --out {out} --resume` (without --mask), or start again with another --out")
    if is_run(out):
        raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    methods = auto.candidates()
    minutes = cfg.max_minutes / len(methods) if cfg.max_minutes is not None else None
    share = f", {minutes:.1f} minutes each (--max-minutes shared)" if minutes is not None else f", {cfg.epochs} epochs each"
    print(f"--mask auto: training {len(methods)} times to compare validation accuracy ("
          + ", ".join("no masks" if m is None else f"{m} masks" for m in methods)
          + f"){share}; about {len(methods)} times as long as one run", flush=True)
    trials, results = [], {}
    for method in methods:
        folder = out / auto.TRIALS / auto.name(method)
        report = read_report(folder) if is_run(folder) and _same_options(folder, cfg, minutes) else {}
        if folder.exists() and not report:
            shutil.rmtree(folder)  # what an interrupted comparison left half-trained: it is trained again
        print(f"--mask auto: {'no masks' if method is None else method + ' masks'} -> {folder}"
              + (" (finished by an earlier run of this comparison: kept, not trained again)" if report else ""), flush=True)
        trial = auto.Trial(method)
        try:
            if report:
                result = TrainResult(folder, report["best_epoch"], report["val_accuracy"], report.get("val_loss") or float("nan"),
                                     report["epochs_run"], report["seconds"], [(s["path"], s["reason"]) for s in report["skipped"]],
                                     report.get("epochs_asked"), report.get("stopped_by", "epochs"))
            else:
                result = train(dataclasses.replace(cfg, mask=method, out=str(folder), max_minutes=minutes), progress)
        except SnapActionError as err:  # e.g. every mask empty: that candidate drops out, the comparison goes on
            trial.failed = str(err).splitlines()[0]
            print(f"--mask auto: {auto.describe(trial)}", flush=True)
            trials.append(trial)
            continue
        info = RunInfo.load(result.run_dir)
        trial.scored = len(info.clips.get("val", []))
        trial.accuracy, trial.epochs, trial.seconds = result.val_accuracy, result.epochs_run, result.seconds
        trials.append(trial)
        results[method] = result
    total = max((t.scored for t in trials if t.accuracy is not None), default=0)  # no mask scores every validation clip
    for trial in trials:
        if trial.accuracy is not None:
            trial.total = total
            trial.accuracy = trial.accuracy * trial.scored / total if total else trial.accuracy
    if not results:
        raise ConfigError("--mask auto: no candidate could be trained:\n  - " + "\n  - ".join(auto.describe(t) for t in trials))
    kept, why = auto.choose(trials)
    print("--mask auto: validation accuracy " + "; ".join(auto.describe(t) for t in trials), flush=True)
    print(f"--mask auto: keeping {'no masks' if kept.method is None else kept.method + ' masks'}: {why}; the other runs stay in "
          f"{out / auto.TRIALS}", flush=True)
    result = _keep(results[kept.method], out, auto.record(trials, kept, why))
    return dataclasses.replace(result, seconds=sum(t.seconds for t in trials))


def _same_options(folder: Path, cfg: TrainConfig, minutes: float | None) -> bool:
    """True when the trial run in `folder` was trained on the same data with the same options as `cfg` asks now
    (and the same share of the budget)."""
    from ..run import RunInfo

    saved = RunInfo.load(folder).config
    same = all(saved.get(k) == getattr(cfg, k) for k in ("data", "val_data", "backbone", "epochs", "seed", "batch_size", "mask_fill"))
    return same and saved.get("max_minutes") == minutes


def _keep(result: TrainResult, out: Path, chosen: dict) -> TrainResult:
    """Move the kept trial's run up into `out` (its own snapaction.json then names `out` and records the choice)."""
    import time

    from ..run import RunInfo

    source = Path(result.run_dir)
    if os.environ.get("RANK", "0") != "0":  # with several processes the first one moves the files; the others wait
        end = time.monotonic() + 120
        while source.exists() and time.monotonic() < end:
            time.sleep(0.2)
        return dataclasses.replace(result, run_dir=out)
    for entry in source.iterdir():
        os.replace(entry, out / entry.name)
    source.rmdir()
    info = RunInfo.load(out)
    info.masking = {**info.masking, "auto": chosen}
    info.config = {**info.config, "out": str(out)}
    info.save(out)
    return dataclasses.replace(result, run_dir=out)
