"""Training the pose preset (``--backbone pose``): landmarks of every clip (cached), then a small classifier.

No epochs and no Accelerate: landmarks are extracted once per clip (MediaPipe
Pose, cached by content), and the classifiers train in seconds on them, so a
rerun is the way to continue (there is nothing to ``--resume``). The run
folder has the same shape as every other run's, with the model in ``pose/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from ..config import to_dict
from ..errors import ConfigError
from .config import TrainConfig, TrainResult

log = logging.getLogger(__name__)


def fit(cfg: TrainConfig) -> TrainResult:
    """Train a pose run as `cfg` says and write its folder; returns the chosen classifier's validation figures."""
    from ..data.dataset import prepare_data
    from ..pose.landmarks import landmark_dir, require_mediapipe
    from ..pose.pipeline import fit_pose
    from ..run import RunInfo, clip_keys, plot_pose_classifiers, save_pose_model, write_metrics, write_train_report
    from .setup import check_out

    started = time.monotonic()
    require_mediapipe()  # before any scanning: a missing extra is one sentence, at once
    if cfg.resume:
        raise ConfigError("the pose preset has nothing to resume: landmarks are cached, so run the same command again without --resume")
    run_dir, cfg = check_out(cfg)
    # --num-frames and --no-flip mean for pose what they mean for video models
    settings = replace(cfg.pose, frames=cfg.sampling.get("num_frames", cfg.pose.frames), mirror=cfg.augment.flip)
    data = prepare_data(cfg.data, cfg.val_data, cfg.val_fraction, cfg.seed)
    print(f"pose: landmarks of {settings.frames} frames per clip at {settings.decode_size} px, "
          f"{len(data.train)} training and {len(data.val)} validation clips", flush=True)
    fitted = fit_pose([(s.path, s.label) for s in data.train], [(s.path, s.label) for s in data.val], data.classes,
                      settings, landmark_dir(cfg.cache_dir), cfg.seed)
    skipped = list(data.skipped) + [(str(p), r) for p, r in fitted.skipped]
    report = fitted.report
    val_accuracy = report.val_accuracy.get(report.chosen)
    rows = [{"classifier": kind, "val_accuracy": report.val_accuracy[kind], "seconds": report.train_seconds[kind],
             "chosen": kind == report.chosen} for kind in report.val_accuracy]
    if report.no_body:
        print(f"pose: {report.no_body} of {report.num_train + report.num_val} clips had no body in view in any frame; "
              "they are trained on and judged as they are (what the model sees there is part of the class)", flush=True)
    for row in rows:
        print(f"pose: {row['classifier']:>8} classifier  val acc {row['val_accuracy'] if row['val_accuracy'] is not None else float('nan'):.3f}"
              f"  {row['seconds']:.1f}s" + ("  *" if row["chosen"] else ""), flush=True)
    info = RunInfo(
        classes=data.classes, backbone=cfg.backbone, finetune="full", weights="pose",
        sampling={"num_frames": settings.frames, "mode": "uniform", "stride": 1, "grid": None}, preprocessing={},
        config={**to_dict(cfg), "pose": settings.to_dict(), "clip_seconds": data.clip_seconds},
        skipped=[{"path": p, "reason": r} for p, r in skipped],
        clips=clip_keys(data),
    )
    save_pose_model(run_dir, fitted.model)
    info.save(run_dir)
    write_metrics(run_dir, rows)
    plot_pose_classifiers(run_dir, rows, f"pose classifiers: {report.num_train} training and {report.num_val} validation\n"
                          "clips with a person", report.note)
    result = TrainResult(run_dir, 1, float(val_accuracy if val_accuracy is not None else 0.0), float("nan"), 1,
                         time.monotonic() - started, skipped)
    size = fitted.model.model.num_parameters()  # everything learned; MediaPipe's own graph stays as shipped
    write_train_report(run_dir, result, rows, size, size, extra={"pose": report.to_dict()})
    return result
