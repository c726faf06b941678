"""The PyTorch inference paths: fp32 (the reference), bf16 autocast where the hardware has it, int8 dynamic quantization.

Input layout everywhere: ``pixel_values`` float32 (B, T, C, H, W), normalised;
the model returns an object with ``.logits`` (B, K). LoRA is merged before a
model gets here (`snapaction.run.load_model`), and transformers runs attention
through PyTorch's SDPA by default.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from ..errors import ConfigError
from .cpu import has_native_bf16

log = logging.getLogger(__name__)


class Autocast(nn.Module):
    """`model` run under bf16 autocast on `device_type`; the logits come back as float32 (B, K)."""

    def __init__(self, model: nn.Module, device_type: str):
        super().__init__()
        self.model, self.device_type = model, device_type
        self.config = getattr(model, "config", None)

    def forward(self, pixel_values: torch.Tensor):
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.model(pixel_values=pixel_values)
        out.logits = out.logits.float()
        return out


def quantize_int8(model: nn.Module) -> nn.Module:
    """`model` with every ``nn.Linear`` replaced by a dynamically quantized int8 one (weights int8 per tensor,
    activations quantized per batch); in place. CPU only. Convolutions stay fp32."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's eager quantization warns that torchao will replace it; it still works
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.cpu().eval(), {nn.Linear}, dtype=torch.qint8, inplace=True)


def torch_model(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """`model` ready for inference at `precision` ('fp32', 'bf16' or 'int8', already resolved) on `device`."""
    model = model.eval()
    if precision == "fp32":
        return model
    if precision == "int8":
        if device.type != "cpu":
            raise ConfigError(f"--precision int8 (dynamic quantization) runs on the CPU only, got --device {device}; use --device cpu or --precision bf16")
        return quantize_int8(model)
    if precision == "bf16":
        if device.type == "cpu" and not has_native_bf16():
            log.warning("this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag): bf16 would be emulated and "
                        "slower than fp32, so the model runs in fp32; --precision int8 is the fast path here")
            return model
        return Autocast(model, device.type)
    raise ConfigError(f"unknown precision {precision!r}")  # resolve_precision has checked the name already
