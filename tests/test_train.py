"""The training loop: schedule, losses, the run folder, skipped clips, resume, and two processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snapaction.errors import ConfigError
from snapaction.sampling import Sampling
from snapaction.train import TrainConfig, evaluate, lr_factor, smooth_targets, soft_cross_entropy, train


def tiny_config(data, out, **overrides) -> TrainConfig:
    """Scratch preset, 4 frames of 32 px, a few epochs: seconds on 2 cores."""
    from snapaction.augment import Augment

    values = dict(
        data=str(data), out=str(out), backbone="scratch", epochs=3, batch_size=4, lr=3e-3, patience=0,
        sampling=Sampling(num_frames=4), cache_frames=8, cache_dir=str(Path(out).parent / "cache"),
        augment=Augment(mixup_alpha=0.0), precision="no", checkpoint_minutes=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def read_metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_warmup_then_cosine():
    total, warm = 100, 10
    factors = [lr_factor(s, warm, total) for s in range(total)]
    assert all(a < b for a, b in zip(factors[:warm], factors[1:warm + 1]))  # rising during warmup
    assert factors[warm] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[warm:], factors[warm + 1:]))  # then only falling
    assert factors[-1] < 0.01 and lr_factor(total, warm, total) == pytest.approx(0.0)


def test_label_smoothing_changes_the_training_loss_only():
    logits = torch.tensor([[4.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    labels = torch.tensor([0, 1])
    plain = F.cross_entropy(logits, labels)
    assert soft_cross_entropy(logits, smooth_targets(labels, 3, 0.0)) == pytest.approx(plain.item())
    smoothed = soft_cross_entropy(logits, smooth_targets(labels, 3, 0.3))
    assert smoothed.item() > plain.item() + 0.05
    assert torch.allclose(smooth_targets(labels, 3, 0.3).sum(-1), torch.ones(2))


def test_validation_loss_is_plain_cross_entropy():
    from accelerate import Accelerator

    logits = torch.tensor([[3.0, -1.0], [0.2, 0.1], [-2.0, 1.0]])
    labels = torch.tensor([0, 1, 1])

    class Fixed(torch.nn.Module):
        def forward(self, pixel_values):
            from types import SimpleNamespace

            return SimpleNamespace(logits=logits[pixel_values[:, 0].long()])

    batches = [(torch.tensor([[0.0], [1.0]]), labels[:2]), (torch.tensor([[2.0]]), labels[2:])]
    result = evaluate(Fixed(), batches, Accelerator(cpu=True))
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), abs=1e-6)
    assert result["accuracy"] == pytest.approx(2 / 3)  # the middle clip is wrong


def test_config_reports_every_problem_at_once():
    with pytest.raises(ConfigError) as err:
        TrainConfig(data="x", epochs=0, label_smoothing=1.5, warmup=-0.1)
    text = str(err.value)
    assert "epochs must be at least 1, got 0" in text and "label_smoothing" in text and "warmup" in text
    with pytest.raises(ConfigError, match="needs pretrained weights"):
        TrainConfig(data="x", backbone="scratch", finetune="lora")


def test_train_writes_the_run_folder_and_lists_skipped_clips(colour_clips, tmp_path):
    (colour_clips / "red" / "broken.mp4").write_bytes(b"not a video at all")
    result = train(tiny_config(colour_clips, tmp_path / "run"))
    run = tmp_path / "run"
    info = json.loads((run / "snapaction.json").read_text())
    assert info["classes"] == ["blue", "red"]
    assert info["backbone"] == "scratch" and info["finetune"] == "full" and info["weights"] == "model"
    assert info["sampling"]["num_frames"] == 4
    assert info["config"]["epochs"] == 3 and info["config"]["label_smoothing"] == 0.1
    assert "torch" in info["versions"]
    assert [s["path"] for s in info["skipped"]] == [str(colour_clips / "red" / "broken.mp4")]
    assert (run / "model" / "config.json").is_file() and (run / "curves.png").stat().st_size > 1000
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    report = json.loads((run / "report.json").read_text())
    assert report["val_accuracy"] == result.val_accuracy == max(float(r["val_accuracy"]) for r in rows)
    assert result.skipped and "broken.mp4" in result.skipped[0][0]


def test_existing_run_is_not_overwritten(colour_clips, tmp_path):
    train(tiny_config(colour_clips, tmp_path / "run", epochs=1))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(tiny_config(colour_clips, tmp_path / "run", epochs=1))


def test_resume_ends_with_the_same_metrics(colour_clips, tmp_path, monkeypatch):
    import snapaction.train as train_module

    config = dict(epochs=4, augment=None)
    from snapaction.augment import Augment

    config["augment"] = Augment(mixup_alpha=0.4, mixup_prob=1.0)
    whole = train(tiny_config(colour_clips, tmp_path / "whole", **config))

    real_save = train_module.save_checkpoint
    calls = {"n": 0}

    def crash_after_two(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(colour_clips, tmp_path / "parts", **config))
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    assert len(read_metrics(tmp_path / "parts")) == 2
    resumed = train(tiny_config(colour_clips, tmp_path / "parts", resume=True, **config))

    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_metrics(tmp_path / "parts")) == strip(read_metrics(tmp_path / "whole"))
    assert resumed.val_accuracy == whole.val_accuracy and resumed.best_epoch == whole.best_epoch


def test_two_cpu_processes_train_with_accelerate(colour_clips, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "snapaction", "train", str(colour_clips),
        "--backbone", "scratch", "--out", str(out), "--epochs", "4", "--batch-size", "2", "--num-frames", "4",
        "--cache-frames", "8", "--lr", "3e-3", "--cache-dir", str(tmp_path / "cache"), "--mixup-alpha", "0", "--patience", "0",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    rows = read_metrics(out)
    assert len(rows) == 4
    # Red against blue is easy: both processes' halves of every batch must have trained one model.
    assert float(rows[-1]["val_accuracy"]) == 1.0
    assert done.stdout.count("epoch   1") == 1  # only the main process prints
