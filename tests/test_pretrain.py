"""`snapaction pretrain`: unlabeled clips in, a backbone folder out that fine-tuning loads like a hub checkpoint."""

import json

import numpy as np
import pytest
import torch

from conftest import save_tiny_videomae, write_video

MICRO = dict(image_size=32, num_frames=4, patch_size=8, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
             num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
             decoder_num_attention_heads=2, decoder_intermediate_size=64)


@pytest.fixture
def micro(monkeypatch):
    """`--size tiny` shrunk to run in milliseconds."""
    from snapaction.pretrain import model

    monkeypatch.setitem(model.SIZES, "tiny", MICRO)


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Six demo-like clips (40 px, 16 frames) in nested folders, and a byte copy of one."""
    from snapaction.demo.clips import CLASSES, render_clip

    root = tmp_path_factory.mktemp("footage") / "footage"
    for i in range(6):
        frames = render_clip(CLASSES[i % 4], np.random.default_rng(i), size=40, num_frames=16)
        write_video(root / f"cam{i % 2}" / f"clip_{i}.mp4", frames, fps=16, codec="libx264")
    (root / "cam0" / "copy_of_clip_0.mp4").write_bytes((root / "cam0" / "clip_0.mp4").read_bytes())
    return root


def run(footage, out, **changes):
    from snapaction.pretrain.loop import pretrain
    from snapaction.pretrain.settings import PretrainConfig

    settings = dict(data=str(footage), out=str(out), epochs=3, batch_size=2, preview_every=2, seed=0, checkpoint_minutes=0)
    settings.update(changes)
    return pretrain(PretrainConfig(**settings))


def test_pretraining_writes_a_backbone_that_loads_like_a_hub_checkpoint(footage, tmp_path, micro):
    from safetensors.torch import load_file
    from transformers import AutoModelForVideoClassification

    from snapaction.models.backbone import load_backbone, preprocessing_for
    from snapaction.preprocess import Preprocessing

    out = tmp_path / "backbone"
    result = run(footage, out)
    assert result.steps == 9  # 3 epochs of 6 curated clips in batches of 2: the copy is left out
    losses = [row[2] for row in json.loads((out / "pretraining" / "checkpoint" / "state.json").read_text())["losses"]]
    assert result.first_loss == pytest.approx(np.mean(losses[:4])) and result.final_loss == pytest.approx(np.mean(losses[-4:]))
    assert result.stopped_by == "epochs"
    work = out / "pretraining"
    curation = (work / "curation.txt").read_text()
    assert "copy_of_clip_0.mp4" in curation and "clip_0.mp4" in curation
    report = json.loads((work / "report.json").read_text())
    assert report["clips"] == 6 and report["result"]["steps"] == 9
    for png in ("loss.png", "previews/step-000002.png", "previews/step-000008.png", "previews/final.png"):
        assert (work / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    # the encoder weights a classifier loads are exactly the ones saved
    saved = load_file(out / "model.safetensors")
    classifier = AutoModelForVideoClassification.from_pretrained(out, num_labels=2)
    encoder = classifier.videomae.state_dict()
    # transformers stores VideoMAE's query and value biases as q_bias / v_bias and loads them back under these names
    stored = {k.removeprefix("videomae.").replace(".q_bias", ".query.bias").replace(".v_bias", ".value.bias"): v
              for k, v in saved.items() if k.startswith("videomae.")}
    assert set(encoder) == set(stored)
    for key, value in encoder.items():
        assert torch.equal(value, stored[key]), key
    # and SnapAction's own loader takes it as a backbone, with its preprocessing
    model, new_modules = load_backbone(str(out), ["a", "b"])
    assert sorted(new_modules) == ["classifier", "fc_norm"]
    assert preprocessing_for(str(out)) == Preprocessing(size=37, crop=(32, 32), mean=(0.45,) * 3, std=(0.225,) * 3)
    assert model.config.use_mean_pooling and model.config.num_frames == 4


def test_an_interrupted_run_resumes_to_the_same_weights(footage, tmp_path, micro):
    from safetensors.torch import load_file

    from snapaction.errors import ConfigError
    from snapaction.pretrain.loop import pretrain
    from snapaction.pretrain.settings import PretrainConfig

    whole = run(footage, tmp_path / "whole", epochs=4)
    out = tmp_path / "stopped"
    cfg = PretrainConfig(data=str(footage), out=str(out), epochs=4, batch_size=2, preview_every=0, seed=0, checkpoint_minutes=0)

    def stop_in_epoch_3(event):
        if event["step"] == 7:  # epoch 2's checkpoint is on disk; the kill falls inside epoch 3
            raise KeyboardInterrupt

    with pytest.raises(ConfigError, match="--resume"):
        pretrain(cfg, stop_in_epoch_3)
    resumed = pretrain(PretrainConfig(**{**vars(cfg), "resume": True}))
    assert resumed.steps == whole.steps == 12
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_continuing_from_a_classifier_checkpoint_keeps_its_encoder_and_learns_a_decoder(tmp_path):
    from safetensors.torch import load_file

    from snapaction.pretrain.loop import build_model
    from snapaction.pretrain.settings import PretrainConfig

    folder = save_tiny_videomae(tmp_path / "kinetics-like", classify_as=["x", "y", "z"])
    model, preprocessing, started = build_model(PretrainConfig(data=".", out=str(tmp_path / "o"), backbone=str(folder)))
    assert type(model).__name__ == "VideoMAEForPreTraining" and started == str(folder)
    saved = {k.replace(".q_bias", ".query.bias").replace(".v_bias", ".value.bias"): v
             for k, v in load_file(folder / "model.safetensors").items()}
    for key, value in model.videomae.state_dict().items():
        assert torch.equal(value, saved["videomae." + key]), key
    assert preprocessing.crop == (32, 32) and preprocessing.mean == (0.485, 0.456, 0.406)


def test_bad_starts_are_refused_in_one_sentence(footage, tmp_path):
    from transformers import BertConfig

    from snapaction.errors import BackboneError, ConfigError
    from snapaction.pretrain.loop import build_model, pretrain
    from snapaction.pretrain.settings import PretrainConfig

    bert = tmp_path / "bert"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(bert)
    with pytest.raises(BackboneError, match="VideoMAE checkpoints only.*bert"):
        build_model(PretrainConfig(data=".", out=str(tmp_path / "o"), backbone=str(bert)))
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already holds"):
        pretrain(PretrainConfig(data=str(footage), out=str(used)))
    assert (used / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="no pretraining checkpoint"):
        pretrain(PretrainConfig(data=str(footage), out=str(tmp_path / "fresh"), resume=True))
    with pytest.raises(ConfigError) as err:
        PretrainConfig(data=".", out="o", size="huge", epochs=0, lr=-1, snapshots=[-2])
    for word in ("size", "epochs", "lr", "snapshots"):
        assert word in str(err.value)


def test_help_explains_every_option(capsys):
    import dataclasses

    from snapaction.cli import main
    from snapaction.pretrain.model import Objective
    from snapaction.pretrain.settings import PretrainConfig

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = capsys.readouterr().out
    for cls in (PretrainConfig, Objective):
        for f in dataclasses.fields(cls):
            if "help" in f.metadata:
                assert (f.metadata.get("flag") or "--" + f.name.replace("_", "-")) in text, f.name
    assert "accelerate launch" in text and "--resume" in text


def test_the_command_pretrains_the_tiny_size_and_dry_run_only_reports(footage, tmp_path, capsys):
    from snapaction.cli import main

    out = tmp_path / "cli"
    assert main(["pretrain", str(footage), "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "6 clips kept, 1 left out" in said and "copy_of_clip_0.mp4" in said
    assert not out.exists()
    assert main(["pretrain", str(footage), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--preview-every", "0"]) == 0
    said = capsys.readouterr().out
    assert "pretrained 2 steps (1 epochs" in said and f"backbone written to {out}" in said
    config = json.loads((out / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["image_size"], config["num_frames"]) == (192, 4, 64, 8)
    assert main(["pretrain", str(footage), "--out", str(out)]) == 2  # a finished run is not overwritten
    assert "already holds a pretraining run" in capsys.readouterr().err


def test_a_time_budget_lays_the_schedule_over_it_and_ends_the_run(footage, tmp_path, micro, monkeypatch):
    from snapaction.pretrain import loop

    ticks = iter(range(10**6))
    monkeypatch.setattr(loop, "clock", lambda: float(next(ticks)))  # a slow machine: every look at the clock, a second
    result = run(footage, tmp_path / "budget", epochs=1000, minutes=0.5, preview_every=0)
    assert result.stopped_by == "minutes"
    assert 30 <= result.seconds < 45  # ends once 30 s have passed, not at 1000 epochs
    assert 3 <= result.steps < 30
    state = json.loads((tmp_path / "budget" / "pretraining" / "checkpoint" / "state.json").read_text())
    assert state["planned"] == result.steps  # the schedule ended where the run did: at the bottom of the cosine


def test_dry_run_judges_clips_by_the_frames_of_the_backbone_it_will_train(tmp_path, capsys):
    from snapaction.cli import main
    from snapaction.demo.clips import render_clip

    folder = save_tiny_videomae(tmp_path / "four-frames")  # a checkpoint that takes 4 frames a clip
    frames = render_clip("pick", np.random.default_rng(0), size=40, num_frames=6)
    write_video(tmp_path / "short" / "six_frames.mp4", frames, fps=8, codec="libx264")
    assert main(["pretrain", str(tmp_path / "short"), "--backbone", str(folder), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "1 clips kept, 0 left out" in capsys.readouterr().out  # enough for this model; the tiny size (8) would refuse it
    assert main(["pretrain", str(tmp_path / "short"), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "too short" in capsys.readouterr().out
