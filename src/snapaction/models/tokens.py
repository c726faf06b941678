"""Token dropping for VideoMAE fine-tuning (as in VideoMAE V2): each training clip keeps a random share of its tokens.

The encoder's cost grows with its tokens (linearly in the projections, squared in
attention), so keeping half of a clip's 1568 tokens makes a training step about
twice as fast and its activations half as large. Mean pooling over the kept
tokens still sees the whole clip's extent. Validation and prediction keep every token.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def token_count(model) -> int | None:
    """Tokens per clip of a VideoMAE model ((T / tubelet) x (H / patch) x (W / patch)); None for other models."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "videomae":
        return None
    side = config.image_size // config.patch_size
    return config.num_frames // config.tubelet_size * side * side


def check_token_keep(model, keep: float, backbone: str) -> int | None:
    """Tokens per clip when `keep` < 1 drops some; `ConfigError` when the backbone has no tokens to drop."""
    if keep >= 1:
        return None
    tokens = token_count(model)
    if tokens is None:
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ConfigError(f"--token-keep {keep:g} drops VideoMAE tokens, and backbone {backbone!r} ({kind}) has none; leave it at 1")
    return tokens


def drop_mask(batch: int, tokens: int, keep: float, generator: torch.Generator) -> torch.Tensor:
    """bool (batch, tokens), True where a token is dropped; every clip keeps the same number, round(keep * tokens), at random."""
    kept = max(1, round(keep * tokens))
    order = torch.rand(batch, tokens, generator=generator).argsort(dim=1)
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    mask.scatter_(1, order[:, :kept], False)
    return mask
