"""Backbones: loading through from_pretrained, LoRA wiring, gradients, and clear errors."""

from __future__ import annotations

import pytest
import torch

from snapaction.errors import BackboneError
from snapaction.models.backbone import (
    LoraSettings,
    apply_lora,
    count_parameters,
    load_backbone,
    pooled_features,
    resolve_backbone,
)

CLASSES = ["drop", "pick", "wave"]


def test_hub_style_checkpoint_gets_a_fresh_head_and_mean_pooling(tiny_videomae):
    model, new = load_backbone(str(tiny_videomae), CLASSES)
    assert model.config.id2label == {0: "drop", 1: "pick", 2: "wave"}
    assert model.config.label2id == {"drop": 0, "pick": 1, "wave": 2}
    assert model.classifier.out_features == 3
    # The pretraining checkpoint says use_mean_pooling false; SnapAction pools by mean.
    assert model.fc_norm is not None
    assert new == ["classifier", "fc_norm"]
    x = torch.randn(2, 4, 3, 32, 32)
    assert model(pixel_values=x).logits.shape == (2, 3)


def test_encoder_weights_come_from_the_checkpoint(tiny_videomae):
    from transformers import VideoMAEForPreTraining

    saved = VideoMAEForPreTraining.from_pretrained(tiny_videomae)
    model, _ = load_backbone(str(tiny_videomae), CLASSES)
    a = saved.videomae.encoder.layer[1].attention.attention.query.weight
    b = model.videomae.encoder.layer[1].attention.attention.query.weight
    assert torch.equal(a, b)


def test_lora_trains_adapters_and_head_and_leaves_base_weights_alone(tiny_videomae):
    torch.manual_seed(0)
    model, new = load_backbone(str(tiny_videomae), CLASSES)
    model = apply_lora(model, new, LoraSettings(lora_rank=4, lora_alpha=8, lora_dropout=0.0))
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    assert any("classifier" in n for n in trainable) and any("fc_norm" in n for n in trainable)
    assert all(("lora_" in n) or ("modules_to_save" in n) for n in trainable)
    n_trainable, n_total = count_parameters(model)
    assert 0 < n_trainable < n_total

    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    x, y = torch.randn(4, 4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    for _ in range(2):  # lora_B starts at zero, so lora_A only gets a gradient from the second step on
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(pixel_values=x).logits, y).backward()
        optimizer.step()
    for name, param in trainable.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    for name, param in model.named_parameters():
        if name in base_before:
            assert torch.equal(param, base_before[name]), name


def test_lora_only_on_chosen_layers(tiny_videomae):
    model, new = load_backbone(str(tiny_videomae), CLASSES)
    model = apply_lora(model, new, LoraSettings(lora_rank=2, lora_layers=[1]))
    lora_names = [n for n, _ in model.named_parameters() if "lora_A" in n]
    assert lora_names and all(".layer.1." in n for n in lora_names)


def test_unknown_lora_target_lists_the_layer_names(tiny_videomae):
    model, new = load_backbone(str(tiny_videomae), CLASSES)
    with pytest.raises(BackboneError, match=r"\['qkv'\] match no linear layer.*'query'"):
        apply_lora(model, new, LoraSettings(lora_targets=["qkv"]))


def test_missing_hub_backbone_fails_in_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(BackboneError) as err:
        resolve_backbone("MCG-NJU/videomae-base")
    message = str(err.value)
    assert "hf download MCG-NJU/videomae-base" in message and "--backbone" in message
    assert "\n" not in message


def test_missing_backbone_folder_is_named(tmp_path):
    with pytest.raises(BackboneError, match="does not exist"):
        resolve_backbone(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="no config.json"):
        resolve_backbone(str(tmp_path / "empty"))


def test_scratch_preset_every_parameter_gets_a_gradient():
    model, new = load_backbone("scratch", CLASSES)
    assert new == ["classifier"]
    x = torch.randn(2, 8, 3, 64, 64)
    model(pixel_values=x).logits.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    trainable, total = count_parameters(model)
    assert trainable == total and 0.7e6 < total < 0.8e6


def test_scratch_round_trips_through_auto_classes(tmp_path):
    from transformers import AutoModelForVideoClassification

    model, _ = load_backbone("scratch", CLASSES)
    model.eval()
    model.save_pretrained(tmp_path / "m")
    again = AutoModelForVideoClassification.from_pretrained(tmp_path / "m").eval()
    x = torch.randn(1, 8, 3, 64, 64)
    assert torch.equal(model(pixel_values=x).logits, again(pixel_values=x).logits)
    assert again.config.id2label[2] == "wave"


def test_pooled_features_are_the_head_input(tiny_videomae):
    model, _ = load_backbone(str(tiny_videomae), CLASSES)
    model.eval()
    x = torch.randn(2, 4, 3, 32, 32)
    feats = pooled_features(model, x)
    assert feats.shape == (2, 32)
    assert torch.allclose(model.classifier(feats), model(pixel_values=x).logits, atol=1e-6)
