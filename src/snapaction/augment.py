"""Training-time augmentation: pure functions on one clip (or a batch) of frames.

Layout: a clip is ``float32 (T, C, H, W)`` with values in [0, 1], before
normalisation; a batch is ``(B, T, C, H, W)``. Randomness comes only from the
``numpy.random.Generator`` passed in, so a seed replays the same augmentation.
Every frame of a clip gets the same crop, flip and colour change, and no
function here reorders frames: time is never reversed (the demo classes "pick"
and "drop" differ only in the order of their frames).

Validation and prediction use none of this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import check, option

if TYPE_CHECKING:
    import torch

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights, as torchvision's rgb_to_grayscale


def crop_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """A random box ``(top, left, box_height, box_width)`` inside a ``height x width`` frame.

    The box covers a fraction of the frame's area drawn from `scale` and has an
    aspect ratio (width / height) drawn log-uniformly from `ratio`. After 10
    tries that do not fit, the largest centred box with a ratio inside `ratio`
    is used (the same rule as torchvision's RandomResizedCrop).
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(
    video: torch.Tensor,
    out_size: tuple[int, int] | int,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    *,
    rng: np.random.Generator,
) -> torch.Tensor:
    """One random box (see `crop_box`) cut from every frame, resized to `out_size` ``(height, width)`` (an int: square).

    ``(T, C, H, W) -> (T, C, out_h, out_w)``; bilinear resizing with antialiasing.
    """
    _check_clip(video)
    top, left, h, w = crop_box(video.shape[-2], video.shape[-1], scale, ratio, rng)
    return resize(video[..., top : top + h, left : left + w], out_size)


def resize(video: torch.Tensor, out_size: tuple[int, int] | int) -> torch.Tensor:
    """Every frame resized to `out_size` ``(height, width)`` (an int: square): ``(T, C, H, W) -> (T, C, out_h, out_w)``."""
    size = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
    import torch.nn.functional as F  # here, so the options can be read (and --help built) without torch

    return F.interpolate(video, size=size, mode="bilinear", align_corners=False, antialias=True)


def hflip(video: torch.Tensor) -> torch.Tensor:
    """Every frame mirrored left to right: ``(..., H, W)`` in, same shape out."""
    return video.flip(-1)


def color_jitter(
    video: torch.Tensor,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
    *,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Brightness, contrast and saturation changed by the same random factors for every frame.

    Each factor is drawn uniformly from ``[max(0, 1 - s), 1 + s]`` for strength
    ``s`` (0 leaves that property alone); the three are applied in a random
    order, each clamped to [0, 1], as torchvision's ColorJitter does per image.
    Contrast blends each frame towards its own mean grey level. ``(T, C, H, W)``
    with C = 3 (RGB) or 1 in, same shape out.
    """
    _check_clip(video)
    factors = [rng.uniform(max(0.0, 1 - s), 1 + s) for s in (brightness, contrast, saturation)]
    out = video
    for k in rng.permutation(3):
        f = float(factors[k])
        if f == 1.0:
            continue
        if k == 0:
            out = out * f
        elif k == 1:
            mean = _gray(out).mean(dim=(-3, -2, -1), keepdim=True)  # (T, 1, 1, 1): one grey level per frame
            out = f * out + (1 - f) * mean
        else:
            out = f * out + (1 - f) * _gray(out)
        out = out.clamp(0, 1)
    return out


def mixup(
    videos: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend each clip of a batch with another one, and their targets by the same amount.

    ``videos (B, ...)``, ``targets (B, K)`` class probabilities. One
    ``lam ~ Beta(alpha, alpha)`` is drawn, then a permutation ``perm`` of the
    batch: clip i becomes ``lam * videos[i] + (1 - lam) * videos[perm[i]]`` and
    so does its target, which therefore still sums to 1. ``alpha <= 0`` returns
    the batch unchanged.
    """
    if targets.ndim != 2 or len(targets) != len(videos):
        raise ValueError(f"targets must be (B, K) with B = {len(videos)} clips, got shape {tuple(targets.shape)}")
    if alpha <= 0:
        return videos, targets
    lam = float(rng.beta(alpha, alpha))
    import torch

    perm = torch.from_numpy(rng.permutation(len(videos))).to(videos.device)
    return lam * videos + (1 - lam) * videos[perm], lam * targets + (1 - lam) * targets[perm.to(targets.device)]


@dataclass(frozen=True)
class Augment:
    """The training augmentation of one clip: random resized crop, then flip, then colour jitter."""

    crop_scale_min: float = option(0.5, "smallest fraction of the frame area a training crop keeps")
    crop_scale_max: float = option(1.0, "largest fraction of the frame area a training crop keeps")
    flip: bool = option(True, "mirror half of the training clips left to right")
    brightness: float = option(0.3, "brightness jitter strength: factor drawn from [1 - x, 1 + x]")
    contrast: float = option(0.3, "contrast jitter strength: factor drawn from [1 - x, 1 + x]")
    saturation: float = option(0.3, "saturation jitter strength: factor drawn from [1 - x, 1 + x]")
    mixup_alpha: float = option(0.2, "mixup Beta(alpha, alpha) parameter; 0 disables mixup")
    mixup_prob: float = option(0.5, "chance that a training batch is mixed up")

    def __post_init__(self):
        problems = []
        for name in ("crop_scale_min", "crop_scale_max"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                problems.append(f"{name} must be in (0, 1], got {value!r}")
        if self.crop_scale_min > self.crop_scale_max:
            problems.append(
                f"crop_scale_min ({self.crop_scale_min!r}) must not exceed crop_scale_max ({self.crop_scale_max!r})"
            )
        for name in ("brightness", "contrast", "saturation", "mixup_alpha"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:  # also rejects NaN
                problems.append(f"{name} must be zero or positive, got {value!r}")
        if not 0 <= self.mixup_prob <= 1:
            problems.append(f"mixup_prob must be in [0, 1], got {self.mixup_prob!r}")
        if not isinstance(self.flip, bool):
            problems.append(f"flip must be true or false, got {self.flip!r}")
        check(problems, "augmentation")

    def __call__(self, video: torch.Tensor, out_size: tuple[int, int] | int, rng: np.random.Generator) -> torch.Tensor:
        """``(T, C, H, W) -> (T, C, out_h, out_w)``, the same random change for every frame."""
        out = random_resized_crop(video, out_size, (self.crop_scale_min, self.crop_scale_max), rng=rng)
        if self.flip and rng.random() < 0.5:
            out = hflip(out)
        return color_jitter(out, self.brightness, self.contrast, self.saturation, rng=rng)

    def mix(
        self, videos: torch.Tensor, targets: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup on a batch with chance `mixup_prob` (see `mixup`); the batch unchanged otherwise."""
        if self.mixup_alpha <= 0 or rng.random() >= self.mixup_prob:
            return videos, targets
        return mixup(videos, targets, self.mixup_alpha, rng)


def _gray(video: torch.Tensor) -> torch.Tensor:
    """Luma of ``(..., C, H, W)`` as ``(..., 1, H, W)``."""
    if video.shape[-3] == 1:
        return video
    r, g, b = video.unbind(-3)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(-3)


def _check_clip(video: torch.Tensor) -> None:
    if video.ndim != 4 or video.shape[-3] not in (1, 3):
        raise ValueError(f"expected one clip as (T, C, H, W) with C = 1 or 3, got shape {tuple(video.shape)}")
