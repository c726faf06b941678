"""What a user chooses about a backbone, importable without loading any model library (so `--help` is quick)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check, option

DEFAULT_BACKBONE = "MCG-NJU/videomae-base"
FINETUNE_MODES = ("lora", "full", "probe")


@dataclass(frozen=True)
class LoraSettings:
    """Where LoRA adapters go and how big they are."""

    lora_rank: int = option(16, "LoRA rank r")
    lora_alpha: int = option(32, "LoRA scaling alpha (effective scale alpha / r)")
    lora_dropout: float = option(0.1, "dropout on the LoRA input")
    lora_targets: list[str] = option(["query", "value"], "names of the linear layers that get adapters")
    lora_layers: list[int] | None = option(None, "indices of the transformer layers that get adapters (default: all)")

    def __post_init__(self):
        problems = []
        if self.lora_rank < 1:
            problems.append(f"lora_rank must be at least 1, got {self.lora_rank}")
        if self.lora_alpha <= 0:
            problems.append(f"lora_alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_targets:
            problems.append("lora_targets must name at least one layer")
        check(problems, "LoRA settings")
