"""The training loop: schedule, losses, the run folder, skipped clips and resume (two processes: test_two_processes.py)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snapaction.errors import ConfigError
from snapaction.training import TrainConfig, train
from snapaction.training.loop import validate
from snapaction.training.recipe import lr_factor, smooth_targets, soft_cross_entropy


def tiny_config(data, out, **overrides) -> TrainConfig:
    """Scratch preset, 4 frames of 32 px, a few epochs: seconds on 2 cores."""
    from snapaction.augment import Augment

    values = dict(
        data=str(data), out=str(out), backbone="scratch", epochs=3, batch_size=4, lr=3e-3, patience=0,
        sampling={"num_frames": 4}, cache_frames=8, cache_dir=str(Path(out).parent / "cache"),
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

    batches = [(torch.tensor([[0.0], [1.0]]), labels[:2], []), (torch.tensor([[2.0]]), labels[2:], [])]
    result = validate(Fixed(), batches, Accelerator(cpu=True))
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


def test_one_process_trains_with_any_precision_any_number_of_times(colour_clips, tmp_path, monkeypatch):
    """bf16, then none, then bf16 again in one process: Accelerate allows one precision per process unless reset."""
    from conftest import as_cpu

    got = []
    for n, (kind, precision) in enumerate([("native-bf16", "auto"), ("avx2-only", "auto"), ("avx2-only", "bf16")]):
        as_cpu(monkeypatch, kind)
        result = train(tiny_config(colour_clips, tmp_path / f"run{n}", epochs=1, precision=precision))
        got.append(json.loads((result.run_dir / "report.json").read_text())["precision"])
    assert got == ["bf16", "no", "bf16"]


def test_lora_run_saves_only_the_adapter_and_reloads_to_identical_logits(tiny_videomae, tmp_path):
    from snapaction.models.backbone import LoraSettings, apply_lora, load_backbone
    from snapaction.predict import Predictor
    from snapaction.preprocess import Preprocessing
    from snapaction.run import RunInfo
    from snapaction.run import save_weights

    classes = ["drop", "pick"]
    model, new = load_backbone(str(tiny_videomae), classes)
    model = apply_lora(model, new, LoraSettings(lora_rank=4))
    torch.manual_seed(1)
    with torch.no_grad():  # trained-looking weights: LoRA B is zero at init, which would hide a loading bug
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.1)
    run = tmp_path / "run"
    save_weights(model, run, "lora")
    RunInfo(classes=classes, backbone=str(tiny_videomae), finetune="lora", weights="adapter",
            sampling={"num_frames": 4}, preprocessing=Preprocessing.from_backbone(str(tiny_videomae)).to_dict()).save(run)
    assert (run / "adapter_model.safetensors").stat().st_size < 200_000  # the adapter, not the backbone
    assert not list(run.rglob("model.safetensors"))

    x = torch.randn(2, 4, 3, 32, 32)
    model.eval()
    loaded = Predictor.load(run, device="cpu")
    torch.testing.assert_close(loaded.model(pixel_values=x).logits, model(pixel_values=x).logits, atol=1e-5, rtol=1e-5)


def test_lora_training_end_to_end_on_a_saved_checkpoint(tiny_videomae, colour_clips, tmp_path, monkeypatch):
    from snapaction.models import tokens
    from snapaction.predict import Predictor

    masks = []
    real_drop_mask = tokens.drop_mask
    monkeypatch.setattr(tokens, "drop_mask", lambda *a: masks.append(real_drop_mask(*a)) or masks[-1])
    config = tiny_config(colour_clips, tmp_path / "lora", backbone=str(tiny_videomae), lr=5e-3, epochs=2, gradient_checkpointing=True,
                         sampling={}, cache_frames=None, token_keep=0.5)
    result = train(config)
    assert masks and all((~m).sum(1).eq(4).all() for m in masks)  # every training step kept 4 of the 8 tokens
    info = json.loads((tmp_path / "lora" / "snapaction.json").read_text())
    assert info["finetune"] == "lora" and info["weights"] == "adapter"
    assert info["sampling"]["num_frames"] == 4  # the backbone's own frame count
    assert info["preprocessing"]["crop"] == [32, 32]  # from the checkpoint's processor config
    report = json.loads((tmp_path / "lora" / "report.json").read_text())
    assert 0 < report["trainable_parameters"] < report["total_parameters"]
    prediction = Predictor.load(result.run_dir, device="cpu").predict(colour_clips / "red" / "v_red_g00_c00.mp4")
    assert set(prediction.probabilities) == {"blue", "red"}


def test_probe_mode_caches_features_and_trains_a_head(tiny_videomae, colour_clips, tmp_path, monkeypatch):
    import snapaction.models.backbone as model_module
    from snapaction.predict import Predictor

    config = tiny_config(colour_clips, tmp_path / "probe", backbone=str(tiny_videomae), finetune="probe", lr=1e-2,
                         epochs=5, sampling={}, cache_frames=None, probe_views=2)
    first = train(config)
    run = tmp_path / "probe"
    info = json.loads((run / "snapaction.json").read_text())
    assert info["weights"] == "head" and (run / "head.safetensors").is_file()
    features = list((tmp_path / "cache" / "features").glob("*.npy"))
    assert 12 < len(features) < 24  # two augmented views per training clip, one per validation clip, 12 clips

    calls = {"n": 0}
    real = model_module.pooled_features

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(model_module, "pooled_features", counting)
    again = train(tiny_config(colour_clips, tmp_path / "probe2", backbone=str(tiny_videomae), finetune="probe", lr=1e-2,
                              epochs=5, sampling={}, cache_frames=None, probe_views=2))
    assert calls["n"] == 0  # every feature came from the cache
    assert again.val_accuracy == first.val_accuracy

    # A progress hook hears every epoch, and its True answer ends the run there, written in full.
    heard = []
    stopped = train(tiny_config(colour_clips, tmp_path / "probe3", backbone=str(tiny_videomae), finetune="probe", lr=1e-2,
                                epochs=5, sampling={}, cache_frames=None, probe_views=2),
                    progress=lambda event: heard.append((event["event"], event["epoch"])) or event["epoch"] == 2)
    assert heard == [("epoch", 1), ("epoch", 2)] and stopped.epochs_run == 2 and stopped.stopped_by == "asked"
    assert json.loads((tmp_path / "probe3" / "report.json").read_text())["epochs_run"] == 2

    predictor = Predictor.load(run, device="cpu")
    clip = colour_clips / "blue" / "v_blue_g00_c00.mp4"
    assert predictor.predict(clip).label == "blue"


def test_epoch_sampler_is_reproducible_and_balances_classes_when_asked():
    from collections import Counter

    from snapaction.data.dataset import EpochSampler

    labels = [0] * 90 + [1] * 10
    plain = EpochSampler(labels, seed=3)
    order = list(plain)
    assert sorted(order) == list(range(100)) and order == list(EpochSampler(labels, seed=3))
    plain.set_epoch(1)
    assert list(plain) != order  # a new shuffle every epoch

    balanced = EpochSampler(labels, seed=3, balanced=True)
    draws = Counter()
    for epoch in range(20):
        balanced.set_epoch(epoch)
        draws.update(labels[i] for i in balanced)
    share = draws[1] / sum(draws.values())
    assert 0.45 < share < 0.55  # the 10% class is drawn about half the time


def write_cut_faststart_clip(path: Path) -> Path:
    """An MP4 with its index at the front, cut to 60% of its bytes: it probes well, then fails to decode."""
    import av

    from conftest import solid_clip

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "4"})
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in solid_clip((200, 30, 30), t=24, seed=1):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    return path


def test_ctrl_c_says_what_is_kept_and_the_printed_command_resumes_with_the_runs_own_options(colour_clips, tmp_path, monkeypatch, capsys):
    import shlex

    import snapaction.training.loop as loop
    from snapaction.cli import main

    out = tmp_path / "run"
    argv = ["train", str(colour_clips), "--backbone", "scratch", "--out", str(out), "--epochs", "3", "--batch-size", "4",
            "--num-frames", "4", "--cache-frames", "8", "--cache-dir", str(tmp_path / "cache"), "--mixup-alpha", "0",
            "--checkpoint-minutes", "0", "--patience", "0"]
    real, calls = loop.validate, {"n": 0}

    def ctrl_c_in_the_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # a real SIGINT, as Ctrl-C sends it, delivered to this process
            import signal

            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "validate", ctrl_c_in_the_third_epoch)
    import signal

    # As in a terminal; a suite started in the background (`pytest &` from a script) inherits SIGINT ignored.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(argv) == 130
    finally:
        signal.signal(signal.SIGINT, before)
    said = capsys.readouterr().out
    line = [l for l in said.splitlines() if l.startswith("interrupted")][0]
    assert line.startswith("interrupted during epoch 3: the best epoch so far (")
    assert "continue from the checkpoint after epoch 2 with: snapaction train --out" in line
    command = shlex.split(line.split(" with: ", 1)[1])
    assert command == ["snapaction", "train", "--out", str(out), "--resume"]  # nothing else to repeat
    monkeypatch.setattr(loop, "validate", real)
    assert main(command[1:]) == 0
    rows = read_metrics(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    info = json.loads((out / "snapaction.json").read_text())
    assert info["backbone"] == "scratch" and info["sampling"]["num_frames"] == 4  # the run's own, not the defaults
    with pytest.raises(ConfigError, match="was trained with --backbone scratch, not MCG"):
        from snapaction.training.config import train_config

        train_config({"out": str(out), "resume": True, "backbone": "MCG-NJU/videomae-base"})


@pytest.mark.parametrize("flags, changed", [
    (["--stride", "3"], {"stride": 3}),
    (["--num-frames", "4"], {"num_frames": 4}),
    (["--sampling", "uniform"], {"mode": "uniform"}),
])
def test_each_sampling_flag_changes_only_its_own_field(flags, changed):
    """`--stride 3` on the scratch preset keeps its 8 strided frames; only the stride moves."""
    import dataclasses

    from snapaction.cli import build_parser
    from snapaction.models.backbone import resolve_sampling
    from snapaction.models.presets import PRESETS
    from snapaction.training.config import train_config

    argv = ["train", "clips/", "--backbone", "scratch", *flags]
    cfg = train_config(vars(build_parser(argv).parse_args(argv)))
    assert cfg.sampling == changed
    resolved = resolve_sampling(cfg.backbone, None, cfg.sampling, cfg.cache_frames)
    expected = dataclasses.replace(PRESETS["scratch"].sampling, **changed)
    assert resolved == dataclasses.replace(expected, grid=max(16, 2 * expected.num_frames))


def test_unknown_sampling_field_is_rejected_with_the_accepted_ones():
    with pytest.raises(ConfigError, match="unknown fields \\['frames'\\]; accepted: \\['mode', 'num_frames', 'stride'\\]"):
        TrainConfig(data="x", sampling={"frames": 4})


def test_the_resolved_sampling_is_printed_and_saved(tiny_run):
    from snapaction.models.presets import PRESETS

    saved = json.loads((tiny_run / "snapaction.json").read_text())
    preset = PRESETS["scratch"].sampling
    assert saved["sampling"] == {"num_frames": preset.num_frames, "mode": preset.mode, "stride": preset.stride, "grid": 16}
    assert saved["config"]["sampling"] == saved["sampling"]


def test_the_schedule_is_fitted_to_whichever_ends_first_epochs_or_the_budget():
    from snapaction.training.recipe import fit_to_budget

    assert fit_to_budget(30, [], 300.0) == 30 and fit_to_budget(30, [10.0], None) == 30
    assert fit_to_budget(30, [20.0, 10.0, 10.0], 300.0) == 3 + 26  # the first epoch's decoding is not the pace
    assert fit_to_budget(30, [20.0, 10.0, 10.0], 10_000.0) == 30  # never more than asked
    assert fit_to_budget(30, [100.0], 60.0) == 1  # no room left: what has run
    assert fit_to_budget(30, [20.0], 300.0) == 30  # one epoch, room for many: wait for a pace without decoding
    assert fit_to_budget(30, [20.0], 45.0) == 2  # one epoch, room for one more: plan for it now


class FakeClock:
    """Seconds that pass only when an epoch's validation runs: `seconds_per_epoch` each."""

    def __init__(self, seconds_per_epoch: float):
        self.now, self.step = 0.0, seconds_per_epoch

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("slowness", [1, 5])
def test_a_time_budget_ends_training_at_the_bottom_of_its_schedule_and_says_so(colour_clips, tmp_path, monkeypatch, slowness, capsys):
    """The same 1-minute budget on a machine 5x slower: fewer epochs, but each run's schedule ends at lr 0."""
    import snapaction.training.loop as loop

    clock = FakeClock(12.0 * slowness)
    real_validate = loop.validate

    def validate_taking_time(*args, **kwargs):
        clock.now += clock.step
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(loop, "clock", clock)
    monkeypatch.setattr(loop, "validate", validate_taking_time)
    out = tmp_path / f"budget{slowness}"
    result = train(tiny_config(colour_clips, out, epochs=20, max_minutes=1.0))
    rows = read_metrics(out)
    expected = 5 if slowness == 1 else 1  # 60 s at 12 s an epoch; at 60 s an epoch, one
    assert len(rows) == expected and result.epochs_run == expected and result.stopped_by == "budget"
    if expected > 1:  # re-planned from the first epoch's pace on: laid out for the epochs the budget allowed
        assert float(rows[-1]["lr"]) == 0.0
    assert clock.now <= 60.0 + 1e-9  # and no epoch started that the budget had no room for
    report = json.loads((out / "report.json").read_text())
    assert report["stopped_by"] == "budget" and report["epochs_asked"] == 20 and report["epochs_run"] == expected
    said = capsys.readouterr().out
    assert f"ran {expected} of the 20 asked for" in said


def test_train_help_puts_the_essentials_first_and_names_only_options_that_exist(capsys):
    from snapaction.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    essentials = text.index("the essentials:")
    assert essentials < text.index("--out OUT") < text.index("--max-minutes") < text.index("frame sampling") < text.index("--batch-size")
    flat = " ".join(text.split())  # argparse wraps lines anywhere
    assert "a grouped split of DATA" in flat and "--data)" not in flat
    assert "8 for scratch" in flat  # --num-frames does not claim 16 for every backbone
    assert "27% slower" in flat


def test_a_small_validation_set_is_called_rough(colour_clips, caplog):
    from snapaction.data.dataset import prepare_data

    data = prepare_data(str(colour_clips))
    assert len(data.val) < 20
    assert f"validation has only {len(data.val)} clips" in caplog.text and "rough figure" in caplog.text
