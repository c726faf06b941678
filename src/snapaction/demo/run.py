"""`snapaction demo`: generate the demo clips, train the scratch preset, and judge it on clips it never saw."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..run import RunInfo, is_run

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """How the demo went."""

    run_dir: Path
    data_dir: Path
    val_accuracy: float
    test_accuracy: float
    test_clips: int
    minutes: float
    training: object = None
    """The `TrainResult`: epochs run and asked for, and what stopped training."""


def run_demo(out: str | Path = "demo", clips_per_class: int = 40, test_clips_per_class: int = 25,
             epochs: int = 150, max_minutes: float = 6.5, seed: int = 0) -> DemoResult:
    """Write the demo dataset under `out`/data, train `out`/run on it, and judge it on the held-out clips
    (the report, with its confusion matrix, in `out`/run/eval-test)."""
    from ..augment import Augment
    from ..data.layout import scan
    from ..errors import Interrupted
    from ..files import building
    from ..evaluate import evaluate, write_eval_report
    from ..predict import Predictor
    from ..training import TrainConfig, train
    from .dataset import write_demo_dataset

    started = time.monotonic()
    out = Path(out)
    demo = write_demo_dataset(out / "data", clips_per_class=clips_per_class, test_clips_per_class=test_clips_per_class, seed=seed)
    run_dir = out / "run"
    _check_previous_demo_run(run_dir, demo.train_dir)
    try:
        with building(run_dir) as new:  # the previous run stays whole in run_dir until this one is complete
            config = TrainConfig(
                data=str(demo.train_dir),
                out=str(new),
                backbone="scratch",
                epochs=epochs,
                batch_size=16,
                patience=40,
                augment=Augment(crop_scale_min=0.8, mixup_alpha=0.0),
                max_minutes=max_minutes,
                seed=seed,
                cache_dir=str(out / "cache"),
            )
            result = train(config)
            info = RunInfo.load(new)  # the run's own record names the folder it will be in (`train --out RUN --resume`)
            info.config["out"] = str(run_dir)
            info.save(new)
            # Judged as `snapaction eval` would, so the run folder gets the report and its confusion matrix.
            test = scan(demo.test_dir)
            judged = evaluate(Predictor.load(new), test.samples, batch_clips=8)
            about = {"run": str(run_dir), "data": str(demo.test_dir), "split": None, "backbone": "scratch"}
            report = write_eval_report(new / "eval-test", judged, None, about)
    except KeyboardInterrupt:
        kept = (f"{run_dir} holds the last demo run that completed, whole" if is_run(run_dir)
                else f"no demo run has completed in {run_dir} yet")
        raise Interrupted(f"demo interrupted: {kept}; the run it was training was discarded (run `snapaction demo` again "
                          "to train it anew; its clips are kept)") from None
    result.run_dir = run_dir
    return DemoResult(run_dir, demo.root, result.val_accuracy, float(report["accuracy"]), len(judged.paths),
                      (time.monotonic() - started) / 60, result)


def _check_previous_demo_run(run_dir: Path, train_dir: Path) -> None:
    """The demo trains a new run each time, which replaces the run a previous demo left in `run_dir` once it
    is complete. Only a run trained on this demo's own clips is replaced; any other folder there stops the
    demo with a sentence, before anything is written.
    """
    if not run_dir.exists():
        return
    if is_run(run_dir) and Path(RunInfo.load(run_dir).config.get("data", "")).resolve() == train_dir.resolve():
        log.info("training a new demo run beside the previous one, which it replaces in %s once complete", run_dir)
        return
    raise ConfigError(f"{run_dir} exists and is not a run of this demo's clips; choose another --out, SnapAction will not delete it")
