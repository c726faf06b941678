"""The masked autoencoder SnapAction pretrains: transformers' ``VideoMAEForPreTraining``, its masks and its loss.

The model is transformers' own class, so what `snapaction pretrain` saves loads
with ``from_pretrained`` and with ``snapaction train --backbone FOLDER`` like a
hub checkpoint. The forward pass is written here from the model's own modules
(encoder, ``encoder_to_decoder``, ``mask_token``, decoder) instead of calling
``model(...)``, for three things the built-in forward cannot do:

- **dual masking** (VideoMAE V2): the decoder sees the visible tokens plus only
  a running-cell subset of the masked ones, and reconstructs just those;
- **the reconstruction target** in the input's own normalisation (the built-in
  loss assumes ImageNet mean and std), with a variance floor for per-patch
  normalisation: flat patches (walls, sky, synthetic backgrounds) have almost
  no variance, and dividing by it turns their target into amplified sensor
  noise that no model can predict;
- **frame-difference targets**, which make reconstruction about motion.

Token layout (transformers'): ``(T / tubelet) x (H / patch) x (W / patch)``,
time slowest; a tube is one spatial position over all time slices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..config import check, option

TARGETS = ("pixels", "norm-pixels", "frame-diff")
"""What the decoder reconstructs for each masked tube (see `targets`)."""

SIZES: dict[str, dict] = {
    # geometry and widths: what a model of that size sees and how big it is
    "tiny": dict(
        image_size=64, num_frames=8, patch_size=8, tubelet_size=2,
        hidden_size=192, num_hidden_layers=4, num_attention_heads=3, intermediate_size=768,
        decoder_hidden_size=128, decoder_num_hidden_layers=2, decoder_num_attention_heads=4, decoder_intermediate_size=512,
    ),
    "small": dict(
        image_size=112, num_frames=16, patch_size=16, tubelet_size=2,
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
        decoder_hidden_size=192, decoder_num_hidden_layers=4, decoder_num_attention_heads=3, decoder_intermediate_size=768,
    ),
    "base": dict(  # VideoMAE-base's geometry, for GPUs
        image_size=224, num_frames=16, patch_size=16, tubelet_size=2,
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        decoder_hidden_size=384, decoder_num_hidden_layers=4, decoder_num_attention_heads=6, decoder_intermediate_size=1536,
    ),
}
"""Model sizes `snapaction pretrain --backbone scratch --size NAME` starts from (random weights)."""


@dataclass(frozen=True)
class Objective:
    """How tubes are masked and what is reconstructed."""

    mask_ratio: float = option(0.9, "share of tubes hidden from the encoder (tube masking: the same places in every frame)")
    decoder_ratio: float | None = option(
        None,
        "dual masking (VideoMAE V2): the share of the hidden tubes the decoder reconstructs, chosen as running cells; "
        "0.5 halves the decoder's tokens (default: off, the decoder reconstructs every hidden tube)",
    )
    target: str = option("norm-pixels", "what is reconstructed: 'norm-pixels' (each patch normalised, with a variance floor), 'pixels', or 'frame-diff' (each frame minus the one before)", TARGETS)
    norm_floor: float = option(0.2, "for norm-pixels: the smallest per-patch standard deviation divided by, in units of the input's normalised pixels")

    def __post_init__(self):
        problems = []
        if not 0 < self.mask_ratio < 1:
            problems.append(f"mask_ratio must be between 0 and 1, got {self.mask_ratio!r}")
        if self.decoder_ratio is not None and not 0 < self.decoder_ratio <= 1:
            problems.append(f"decoder_ratio must be in (0, 1], got {self.decoder_ratio!r}")
        if self.target not in TARGETS:
            problems.append(f"target must be one of {list(TARGETS)}, got {self.target!r}")
        if self.norm_floor < 0:
            problems.append(f"norm_floor must be zero or positive, got {self.norm_floor!r}")
        check(problems, "pretraining objective")


def scratch_config(size: str, **overrides):
    """A ``VideoMAEConfig`` of a named size (random weights), mean pooling on, as SnapAction fine-tunes it."""
    from transformers import VideoMAEConfig

    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; the sizes are {list(SIZES)}")
    return VideoMAEConfig(**{**SIZES[size], "use_mean_pooling": True, "norm_pix_loss": True, **overrides})


def token_grid(config) -> tuple[int, int, int]:
    """(time slices, rows, columns) of a model's tokens."""
    return config.num_frames // config.tubelet_size, config.image_size // config.patch_size, config.image_size // config.patch_size


def tube_mask(config, batch: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """bool (B, N): True where a token is hidden from the encoder; the same `ratio` of places in every time slice."""
    slices, rows, cols = token_grid(config)
    places = rows * cols
    hidden = min(places - 1, max(1, round(ratio * places)))
    order = torch.rand(batch, places, generator=generator).argsort(dim=1)
    spatial = torch.zeros(batch, places, dtype=torch.bool)
    spatial.scatter_(1, order[:, :hidden], True)
    return spatial.repeat(1, slices)


def running_cell_mask(config, batch: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """bool (B, N): True where the decoder reconstructs a token, VideoMAE V2's running cells.

    Places are grouped in 2x2 cells; in time slice t each cell keeps
    ``round(4 * ratio)`` of its four places, starting at place ``(t + offset) % 4``,
    so over time every place is reconstructed equally often. Each clip gets
    its own random offset.
    """
    slices, rows, cols = token_grid(config)
    keep = min(4, max(1, round(4 * ratio)))
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    in_cell = ((r % 2) * 2 + (c % 2)).reshape(-1)  # place's index inside its cell, 0..3
    in_cell = torch.where((r % 2).reshape(-1) == 1, 5 - in_cell, in_cell) % 4  # 0,1 / 3,2: a cycle around the cell
    offset = torch.randint(0, 4, (batch, 1, 1), generator=generator)
    t = torch.arange(slices).view(1, slices, 1)
    start = (t + offset) % 4
    kept = ((in_cell.view(1, 1, -1) - start) % 4) < keep
    return kept.reshape(batch, -1)


def patchify(video: torch.Tensor, config) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, N, tubelet * patch * patch * C) in the token order of the model."""
    b, t, ch, h, w = video.shape
    k, p = config.tubelet_size, config.patch_size
    x = video.reshape(b, t // k, k, ch, h // p, p, w // p, p)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)  # B, T', rows, cols, k, p, p, C
    return x.reshape(b, (t // k) * (h // p) * (w // p), k * p * p * ch)


def unpatchify(tokens: torch.Tensor, config, channels: int = 3) -> torch.Tensor:
    """The inverse of `patchify`: (B, N, k * p * p * C) -> (B, T, C, H, W)."""
    slices, rows, cols = token_grid(config)
    k, p = config.tubelet_size, config.patch_size
    b = tokens.shape[0]
    x = tokens.reshape(b, slices, rows, cols, k, p, p, channels)
    x = x.permute(0, 1, 4, 7, 2, 5, 3, 6)  # B, T', k, C, rows, p, cols, p
    return x.reshape(b, slices * k, channels, rows * p, cols * p)


def targets(video: torch.Tensor, config, objective: Objective) -> torch.Tensor:
    """What each token should reconstruct, (B, N, D), from normalised input (B, T, C, H, W)."""
    if objective.target == "frame-diff":
        # each frame minus the one before (the first minus itself: zero), so the target is the motion
        video = video - torch.cat([video[:, :1], video[:, :-1]], dim=1)
    tokens = patchify(video.float(), config)
    if objective.target != "norm-pixels":
        return tokens
    k, p = config.tubelet_size, config.patch_size
    per_channel = tokens.reshape(*tokens.shape[:2], k * p * p, -1)
    mean = per_channel.mean(dim=2, keepdim=True)
    std = per_channel.var(dim=2, unbiased=True, keepdim=True).sqrt().clamp_min(objective.norm_floor)
    return ((per_channel - mean) / std).reshape(tokens.shape)


@dataclass
class Step:
    """One forward pass of the masked autoencoder."""

    loss: torch.Tensor
    prediction: torch.Tensor
    """(B, M, D): the decoder's output for the tokens it reconstructed."""
    decoded: torch.Tensor
    """bool (B, N): which tokens those are (their order in `prediction` is token order)."""
    target: torch.Tensor
    """(B, N, D): the target of every token."""


def forward(model, video: torch.Tensor, hidden: torch.Tensor, objective: Objective, decode: torch.Tensor | None = None) -> Step:
    """Encode the visible tubes of `video`, decode the hidden ones (or, with `decode`, only those hidden and
    in `decode`), and return the mean squared error on the reconstructed tokens.

    `model` is a ``VideoMAEForPreTraining``; `hidden` bool (B, N) with the same
    count in every row; `decode` bool (B, N) or None.
    """
    config = model.config
    encoded = encode_visible(model.videomae, video, hidden)
    visible = model.encoder_to_decoder(encoded)
    b, _, width = visible.shape
    positions = model.position_embeddings.to(device=video.device, dtype=visible.dtype).expand(b, -1, -1)
    decoded = hidden if decode is None else _same_count(hidden & decode)
    visible_pos = positions[~hidden].reshape(b, -1, width)
    decoded_pos = positions[decoded].reshape(b, -1, width)
    tokens = torch.cat([visible + visible_pos, model.mask_token.to(visible.dtype) + decoded_pos], dim=1)
    prediction = model.decoder(tokens, decoded_pos.shape[1]).logits
    with torch.no_grad():
        target = targets(video, config, objective)
    wanted = target[decoded].reshape(b, -1, target.shape[-1])
    loss = nn.functional.mse_loss(prediction.float(), wanted)
    return Step(loss=loss, prediction=prediction, decoded=decoded, target=target)


class MaskedAutoencoder(nn.Module):
    """`forward` as a module, so that Accelerate's DDP wrapper sees (and averages the gradients of) each step."""

    def __init__(self, model, objective: Objective):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, video: torch.Tensor, hidden: torch.Tensor, decode: torch.Tensor | None = None) -> torch.Tensor:
        return forward(self.model, video, hidden, self.objective, decode).loss


def encode_visible(videomae, video: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """The encoder's output for the visible tokens, (B, V, D): what ``videomae(video, bool_masked_pos=hidden)``
    gives, but embedding only the visible patches (transformers embeds every patch and then drops the hidden
    ones: at 90% masking, ten times the patch-embedding work)."""
    embeddings = videomae.embeddings
    projection = embeddings.patch_embeddings.projection  # Conv3d with kernel = stride = (tubelet, patch, patch)
    config = videomae.config
    b = video.shape[0]
    patches = patchify(video, config)[~hidden].reshape(b, -1, projection.weight[0].numel())
    # the conv's weight (out, C, k, p, p) in patchify's (k, p, p, C) order, so one matrix product embeds a patch
    weight = projection.weight.permute(0, 2, 3, 4, 1).reshape(projection.out_channels, -1)
    tokens = nn.functional.linear(patches, weight, projection.bias)
    positions = embeddings.position_embeddings.to(device=video.device, dtype=tokens.dtype).expand(b, -1, -1)
    tokens = tokens + positions[~hidden].reshape(b, -1, tokens.shape[-1])
    hidden_states = videomae.encoder(tokens).last_hidden_state
    if videomae.layernorm is not None:
        hidden_states = videomae.layernorm(hidden_states)
    return hidden_states


def _same_count(mask: torch.Tensor) -> torch.Tensor:
    """`mask` with True entries dropped at random so that every row has as many as the emptiest row."""
    counts = mask.sum(dim=1)
    fewest = int(counts.min())
    if int(counts.max()) == fewest:
        return mask
    score = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, 2.0)
    keep = score.argsort(dim=1)[:, :fewest]
    out = torch.zeros_like(mask)
    out.scatter_(1, keep, True)
    return out


def reconstruction(step: Step, video: torch.Tensor, hidden: torch.Tensor, config, objective: Objective) -> torch.Tensor:
    """The clip as the model sees it after reconstruction, (B, T, C, H, W) in the input's normalisation: visible
    tubes as they are, reconstructed tubes from the prediction (de-normalised with each patch's own statistics for
    norm-pixels, added to the previous frame for frame-diff), tubes neither seen nor reconstructed left at zero."""
    tokens = patchify(video.float(), config)
    out = torch.zeros_like(tokens)
    out[~hidden] = tokens[~hidden]
    predicted = step.prediction.detach().float().reshape(-1, tokens.shape[-1])
    if objective.target == "norm-pixels":
        k, p = config.tubelet_size, config.patch_size
        patches = tokens[step.decoded].reshape(-1, k * p * p, tokens.shape[-1] // (k * p * p))
        mean = patches.mean(dim=1, keepdim=True)
        std = patches.var(dim=1, unbiased=True, keepdim=True).sqrt().clamp_min(objective.norm_floor)
        predicted = (predicted.reshape(patches.shape) * std + mean).reshape(predicted.shape)
        out[step.decoded] = predicted
        return unpatchify(out, config, video.shape[2])
    if objective.target == "pixels":
        out[step.decoded] = predicted
        return unpatchify(out, config, video.shape[2])
    # frame-diff: rebuild each reconstructed frame from the true previous frame plus the predicted change
    true_diff = targets(video, config, objective)
    diff = true_diff.clone()
    diff[step.decoded] = predicted
    previous = torch.cat([video[:, :1], video[:, :-1]], dim=1).float()
    rebuilt = patchify(previous, config) + diff
    out[step.decoded] = rebuilt[step.decoded]
    return unpatchify(out, config, video.shape[2])


def decoder_tokens(config, objective: Objective) -> tuple[int, int]:
    """(tokens the decoder sees, tokens it reconstructs) per clip, for cost figures."""
    slices, rows, cols = token_grid(config)
    places = rows * cols
    hidden = min(places - 1, max(1, round(objective.mask_ratio * places))) * slices
    total = places * slices
    decoded = hidden if objective.decoder_ratio is None else math.floor(hidden * min(1.0, round(4 * objective.decoder_ratio) / 4))
    return total - hidden + decoded, decoded
