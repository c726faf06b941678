"""Backbones and how they are fine-tuned: hub id, local folder or a named preset; LoRA, full, or probe.

Every backbone is a transformers ``AutoModelForVideoClassification`` whose
head is resized to the user's classes (``id2label``/``label2id`` set). Which
modules are new (the head, VideoMAE's pooling norm) is read from the loading
report, not from a list of architectures, so any video checkpoint works.
Input layout: ``pixel_values`` float32 (B, T, C, H, W), normalised.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
from torch import nn

from ..data.sampling import Sampling
from ..errors import BackboneError, ConfigError
from .hub import resolve_backbone  # noqa: F401  the one resolver, imported from here too
from .presets import preset
from .settings import DEFAULT_BACKBONE, FINETUNE_MODES, LoraSettings  # noqa: F401  (their home; imported from here too)

log = logging.getLogger(__name__)

def load_backbone(backbone: str, classes: list[str]) -> tuple[nn.Module, list[str]]:
    """The backbone with a fresh head for `classes`, and the names of the modules that are new.

    `backbone` is a hub id, a local folder, or a preset's name (see `snapaction.models.presets`).
    """
    named = preset(backbone)
    if named is not None:
        if named.build is None:
            raise BackboneError(f"the {backbone!r} preset is not a video network; it trains through its own trainer")
        return named.build(classes)
    id2label = dict(enumerate(classes))
    label2id = {c: i for i, c in enumerate(classes)}
    from transformers import AutoConfig, AutoModelForVideoClassification

    from . import scratch  # noqa: F401  registers the scratch architecture for saved scratch runs

    folder = resolve_backbone(backbone)
    config = AutoConfig.from_pretrained(folder)
    extra = {}
    if config.model_type == "videomae":
        extra["use_mean_pooling"] = True  # VideoMAE has no CLS token: pool by mean over tokens
    try:
        torch_model, info = AutoModelForVideoClassification.from_pretrained(
            folder,
            num_labels=len(classes),
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **extra,
        )
    except ValueError as err:
        raise BackboneError(f"backbone {backbone!r} ({config.model_type}) is not a video classification model: {err}") from None
    new_keys = list(info.get("missing_keys", [])) + [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", [])]
    new_modules = sorted({_module_of(torch_model, key) for key in new_keys})
    if not new_modules:
        new_modules = [_head_name(torch_model)]
    log.info("backbone %s: new modules %s", backbone, new_modules)
    return torch_model, new_modules


def _module_of(torch_model: nn.Module, key: str) -> str:
    """The top-level module name of a parameter key such as 'classifier.weight'."""
    return key.split(".")[0]


def _head_name(torch_model: nn.Module) -> str:
    for name in ("classifier", "head", "fc"):
        if hasattr(torch_model, name):
            return name
    raise BackboneError(f"cannot find the classification head of {type(torch_model).__name__}")


def head_module(torch_model: nn.Module) -> nn.Module:
    """The final linear layer that maps pooled features to class logits."""
    return getattr(_unwrap(torch_model), _head_name(_unwrap(torch_model)))


def _unwrap(torch_model: nn.Module) -> nn.Module:
    return torch_model.get_base_model() if hasattr(torch_model, "get_base_model") else torch_model


def apply_lora(torch_model: nn.Module, new_modules: list[str], lora: LoraSettings) -> nn.Module:
    """Wrap `torch_model` with LoRA adapters (peft); the backbone is frozen, `new_modules` train in full."""
    from peft import LoraConfig, get_peft_model

    linear_names = sorted({n.rsplit(".", 1)[-1] for n, m in torch_model.named_modules() if isinstance(m, nn.Linear)})
    missing = [t for t in lora.lora_targets if t not in linear_names]
    if missing:
        raise BackboneError(
            f"LoRA targets {missing} match no linear layer of {type(torch_model).__name__}; "
            f"its linear layers are named {linear_names}: pass --lora-targets with some of them"
        )
    config = LoraConfig(
        r=lora.lora_rank,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=list(lora.lora_targets),
        layers_to_transform=list(lora.lora_layers) if lora.lora_layers is not None else None,
        modules_to_save=list(new_modules),
        bias="none",
    )
    return get_peft_model(torch_model, config)


def count_parameters(torch_model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in torch_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in torch_model.parameters())
    return trainable, total


@torch.no_grad()
def pooled_features(torch_model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The features the head sees, float (B, D), captured from the head's input."""
    captured = []
    hook = head_module(torch_model).register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
    try:
        torch_model(pixel_values=pixel_values)
    finally:
        hook.remove()
    return captured[0].float()


def resolve_sampling(backbone: str, model, overrides: dict | None = None, grid: int | None = None) -> Sampling:
    """The frames a run samples: the backbone's own (a preset's, else the checkpoint's frame count),
    with each field the user set in `overrides` (num_frames, mode, stride) replacing only that field,
    on a grid of `grid` frames spread over each clip (default: twice the frames sampled, at least 16)."""
    named = preset(backbone)
    wanted = getattr(getattr(model, "config", None), "num_frames", None)
    base = named.sampling if named else Sampling(num_frames=wanted or 16)
    sampling = replace(base, **(overrides or {}))
    if named is None and wanted and sampling.num_frames != wanted:
        raise ConfigError(f"backbone {backbone!r} takes exactly {wanted} frames per clip, got --num-frames {sampling.num_frames}")
    return replace(sampling, grid=grid or max(16, 2 * sampling.num_frames))


def preprocessing_for(backbone: str):
    """The backbone's own preprocessing (a preset's own for a preset)."""
    from ..preprocess import Preprocessing

    named = preset(backbone)
    if named is not None:
        return Preprocessing(**named.preprocessing)
    return Preprocessing.from_backbone(resolve_backbone(backbone))
