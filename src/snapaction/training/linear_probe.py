"""Probe mode: the backbone stays frozen; a linear head learns from cached features in seconds.

Features (the input of the backbone's classification head) are computed once
for K augmented views of every training clip and one clean view of every
validation clip, and cached on disk keyed by backbone, clip content and view,
so reruns (and `snapaction curve`) skip the backbone entirely. The run folder
stores only the head (``head.safetensors``); prediction goes through the same
`Predictor` as every other run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import to_dict
from .config import TrainResult
from .recipe import is_better, lr_factor, smooth_targets, soft_cross_entropy

log = logging.getLogger(__name__)

PASSES_PER_EPOCH = 10
"""Full passes over the cached features that make one reported epoch."""


def feature_key(backbone: str, clip_hash: str, view: int, settings: dict) -> str:
    """Cache key of one clip view's features."""
    blob = json.dumps({"backbone": backbone, "clip": clip_hash, "view": view, **settings}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def clip_features(model, dataset, views: int, backbone: str, settings: dict, cache_dir: Path, device, batch_size: int = 8):
    """Features float32 (N, D), labels (N,), and skipped (path, reason) for `views` views of each clip.

    View k of clip i is ``dataset`` at epoch k, index i (augmented when the
    dataset trains, the same clean view otherwise).
    """
    from ..data.cache import content_hash
    from ..data.dataset import ClipFailure
    from ..errors import ClipError
    from ..models.backbone import pooled_features

    cache_dir.mkdir(parents=True, exist_ok=True)
    feats: dict[tuple[int, int], np.ndarray] = {}
    missing: list[tuple[int, int, Path]] = []
    skipped: list[tuple[str, str]] = []
    for i, sample in enumerate(dataset.samples):
        try:
            clip_hash = content_hash(sample.path)
        except (OSError, ClipError) as err:
            skipped.append((str(sample.path), str(err)))
            continue
        for k in range(views):
            path = cache_dir / f"{feature_key(backbone, clip_hash, k, settings)}.npy"
            if path.is_file():
                feats[i, k] = np.load(path)
            else:
                missing.append((i, k, path))
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(missing), batch_size), desc="features", unit="batch", leave=False, disable=len(missing) < 2 * batch_size):
        chunk, inputs = [], []
        for i, k, path in missing[start : start + batch_size]:
            dataset.set_epoch(k)
            item = dataset[i]
            if isinstance(item, ClipFailure):
                skipped.append((item.path, item.reason))
                continue
            chunk.append((i, k, path))
            inputs.append(item[0])
        if not inputs:
            continue
        out = pooled_features(model, torch.stack(inputs).to(device)).cpu().numpy()
        for (i, k, path), row in zip(chunk, out):
            feats[i, k] = row
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, row)
            tmp.replace(path)
    labels = {c: n for n, c in enumerate(dataset.classes)}
    keys = sorted(feats)
    x = np.stack([feats[key] for key in keys]).astype(np.float32) if keys else np.zeros((0, 0), np.float32)
    y = np.array([labels[dataset.samples[i].label] for i, _ in keys], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y), sorted(set(skipped))


def fit(setup, progress=None) -> TrainResult:
    """Probe-mode training from a `Setup`: features once, then a linear head with warmup+cosine and early stopping.

    `progress` is `snapaction.training.loop.Progress`, told of every epoch (its True answer stops the run there)."""
    from ..models.backbone import count_parameters, head_module
    from ..run import plot_curves, save_head, write_metrics, write_train_report

    cfg, data, model, run_dir, info = setup.cfg, setup.data, setup.model, setup.run_dir, setup.info
    sampling, preprocessing = setup.sampling, setup.preprocessing
    device = setup.accelerator.device
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad = False
    train_set, val_set = setup.datasets()
    settings = {"sampling": to_dict(sampling), "preprocessing": preprocessing.to_dict(), "cache_frames": sampling.grid}
    if setup.masker is not None:  # features of masked clips are other features
        settings["masking"] = setup.masker.masking.to_dict()
    feature_dir = Path(cfg.cache_dir) / "features"
    t0 = time.monotonic()
    x_train, y_train, bad_train = clip_features(
        model, train_set, cfg.probe_views, cfg.backbone, {**settings, "augment": to_dict(cfg.augment), "seed": cfg.seed, "train": True},
        feature_dir, device, cfg.batch_size,
    )
    x_val, y_val, bad_val = clip_features(model, val_set, 1, cfg.backbone, {**settings, "train": False}, feature_dir, device, cfg.batch_size)
    log.info("features: %d training views, %d validation clips in %.1f s", len(x_train), len(x_val), time.monotonic() - t0)
    skipped = list(data.skipped) + bad_train + bad_val
    info.skipped = [{"path": p, "reason": r} for p, r in skipped]

    head = head_module(model)
    head_name = next(name for name, mod in model.named_modules() if mod is head)
    torch.manual_seed(cfg.seed)
    probe = torch.nn.Linear(x_train.shape[1], len(data.classes))
    optimizer = torch.optim.AdamW(probe.parameters(), lr=cfg.peak_lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * PASSES_PER_EPOCH
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, int(cfg.warmup * total), total))
    soft = smooth_targets(y_train, len(data.classes), cfg.label_smoothing)
    rows, best, bad_epochs, stopped_by = [], {"accuracy": -1.0, "loss": math.inf, "epoch": 0}, 0, "epochs"
    for epoch in range(cfg.epochs):
        e0 = time.monotonic()
        for _ in range(PASSES_PER_EPOCH):
            loss = soft_cross_entropy(probe(x_train), soft)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        with torch.no_grad():
            logits = probe(x_val)
            val_loss = F.cross_entropy(logits, y_val).item()
            val_acc = (logits.argmax(-1) == y_val).float().mean().item()
        rows.append({"epoch": epoch + 1, "train_loss": round(loss.item(), 5), "val_loss": round(val_loss, 5),
                     "val_accuracy": round(val_acc, 5), "lr": f"{optimizer.param_groups[0]['lr']:.3e}", "seconds": round(time.monotonic() - e0, 3)})
        if is_better(val_acc, val_loss, best["accuracy"], best["loss"]):
            best = {"accuracy": val_acc, "loss": val_loss, "epoch": epoch + 1}
            bad_epochs = 0
            save_head(run_dir, head_name, probe)
            info.save(run_dir)
        else:
            bad_epochs += 1
        if progress and progress({"event": "epoch", **rows[-1], "planned": cfg.epochs, "best_epoch": best["epoch"],
                                  "best_accuracy": best["accuracy"]}):
            stopped_by = "asked"
            break
        if cfg.patience and bad_epochs >= cfg.patience:
            stopped_by = "patience"
            break
    print(f"probe: best validation accuracy {best['accuracy']:.3f} at epoch {best['epoch']}")
    write_metrics(run_dir, rows)
    trainable = sum(p.numel() for p in probe.parameters())
    result = TrainResult(run_dir, best["epoch"], best["accuracy"], best["loss"], len(rows), time.monotonic() - setup.started, skipped,
                         epochs_asked=cfg.epochs, stopped_by=stopped_by)
    write_train_report(run_dir, result, rows, trainable, count_parameters(model)[1],
                       extra={"epochs_asked": cfg.epochs, "stopped_by": stopped_by, "max_minutes": cfg.max_minutes})
    plot_curves(run_dir, rows)
    return result
