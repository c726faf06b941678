"""Model input from decoded frames: resize, centre crop, rescale and normalise as the backbone's own processor does.

Size, crop, mean and std come from the backbone's ``preprocessor_config.json``
(VideoMAE's defaults only when it has none). Calling a `Preprocessing` on
``uint8 (T, H, W, C)`` frames gives the same ``float32 (T, C, h, w)`` tensor as
transformers' ``VideoMAEImageProcessor`` (the Pillow one): the resize runs in
Pillow on uint8 frames with the processor's resampling filter, then the crop,
then ``x * rescale``, then ``(x - mean) / std``.

The pure functions below work on ``float32 (T, C, H, W)`` clips in [0, 1] for
code that changes frames in between (augmentation, multi-crop prediction).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import check
from .errors import BackboneError, ConfigError, did_you_mean
from .video import scaled_size

log = logging.getLogger(__name__)

CONFIG_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
"""Where a backbone keeps its processor settings, in the order they are looked for."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
"""VideoMAE's processor defaults, used only when a backbone has no processor config."""

CROPS = (1, 3)
"""Spatial crops per view that test-time augmentation takes."""

RESAMPLE = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}
"""Pillow's resampling filters by name, with the codes processor configs store."""


@dataclass(frozen=True)
class Preprocessing:
    """How frames become model input; read from a backbone with `from_backbone`."""

    size: int
    """Shorter side after resizing (the processor's ``size.shortest_edge``, or ``size.height``)."""
    crop: tuple[int, int]
    """(height, width) of the centre crop."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float = 1 / 255
    """Factor from uint8 values to the range `mean` and `std` are given in."""
    resample: str = "bilinear"
    """Pillow filter for the resize (one of `RESAMPLE`)."""
    resize_to: tuple[int, int] | None = None
    """(height, width) to resize to exactly, aspect not kept, for processors whose size is given that way."""

    def __post_init__(self):
        # accept lists (JSON) and numpy numbers; store plain tuples so the object is hashable
        object.__setattr__(self, "crop", _int_pair(self.crop))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.resize_to is not None:
            object.__setattr__(self, "resize_to", _int_pair(self.resize_to))
        problems = []
        if not (isinstance(self.size, (int, np.integer)) and self.size > 0):
            problems.append(f"size must be a positive whole number of pixels, got {self.size!r}")
        for name in ("crop", "resize_to"):
            pair = getattr(self, name)
            if pair is not None and (len(pair) != 2 or min(pair) <= 0):
                problems.append(f"{name} must be (height, width) in positive pixels, got {pair!r}")
        for name in ("mean", "std"):
            if len(getattr(self, name)) != 3:
                problems.append(f"{name} must have 3 values (R, G, B), got {getattr(self, name)!r}")
        if any(not s > 0 for s in self.std):
            problems.append(f"std values must be positive, got {self.std!r}")
        if not self.rescale > 0:
            problems.append(f"rescale must be positive, got {self.rescale!r}")
        if self.resample not in RESAMPLE:
            problems.append(f"resample {self.resample!r} is not one of {list(RESAMPLE)}.{did_you_mean(str(self.resample), RESAMPLE)}")
        check(problems, "preprocessing")

    @classmethod
    def from_backbone(cls, backbone: str | Path | dict) -> "Preprocessing":
        """Settings from a backbone's processor config: a dict, a JSON file, a local folder, or a hub id in the local cache.

        A folder (or cached hub repo) without a processor config gets VideoMAE's
        defaults (224, ImageNet mean and std); a hub id that is not on this
        machine raises `BackboneError`. Logs where the settings came from.
        """
        if isinstance(backbone, dict):
            return cls.from_processor_config(backbone, source="the given processor config")
        found, where = _find_config(str(backbone))
        if found is None:
            return cls.from_processor_config({}, source=f"VideoMAE's defaults ({where} has no processor config)")
        try:
            config = json.loads(found.read_text())
        except (OSError, ValueError) as err:
            raise BackboneError(f"cannot read the processor config {found}: {err}") from None
        if not isinstance(config, dict):
            raise BackboneError(f"the processor config {found} holds {type(config).__name__}, not a JSON object")
        return cls.from_processor_config(config, source=str(found))

    @classmethod
    def from_processor_config(cls, config: dict, source: str = "a processor config") -> "Preprocessing":
        """Settings from the contents of a transformers processor config (missing keys take VideoMAE's defaults)."""
        size, resize_to = _parse_size(config.get("size", DEFAULT_SIZE), source)
        crop = config.get("crop_size")
        crop = _parse_crop(crop, source) if crop is not None else (DEFAULT_SIZE, DEFAULT_SIZE)
        if config.get("do_resize") is False or config.get("do_center_crop") is False:
            log.warning("%s turns resizing or cropping off; SnapAction resizes and crops anyway, since the model needs one input size", source)
        mean, std = config.get("image_mean", IMAGENET_MEAN), config.get("image_std", IMAGENET_STD)
        if config.get("do_normalize") is False:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        mean, std = _triple(mean), _triple(std)
        rescale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0
        prep = cls(size, crop, mean, std, rescale, _resample_name(config.get("resample", 2), source), resize_to)
        log.info("preprocessing from %s: %s", source, prep.describe())
        return prep

    def describe(self) -> str:
        """One line for logs: size, crop, mean and std."""
        resize = f"resize to {self.resize_to[0]}x{self.resize_to[1]}" if self.resize_to else f"short side {self.size}"
        return f"{resize} ({self.resample}), crop {self.crop[0]}x{self.crop[1]}, mean {list(self.mean)}, std {list(self.std)}"

    def to_dict(self) -> dict:
        """Plain JSON-ready values; `from_dict` reads them back."""
        out = asdict(self)
        for name in ("crop", "mean", "std", "resize_to"):
            if out[name] is not None:
                out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        """The inverse of `to_dict` (as stored in a run folder)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown preprocessing keys {unknown}; accepted: {sorted(known)}")
        return cls(**d)

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``uint8 (T, H, W, C)`` frames -> ``float32 (T, C, crop_h, crop_w)`` model input.

        Resize (skipped when the frames already have the target size), centre
        crop, rescale, normalise; the same numbers as the backbone's own processor.
        """
        return self.crops(frames, 1)[0]

    def crops(self, frames: np.ndarray | torch.Tensor, count: int = 1) -> torch.Tensor:
        """``uint8 (T, H, W, C)`` -> ``float32 (count, T, C, crop_h, crop_w)``: the views test-time augmentation averages.

        The frames are resized exactly as `__call__` does; then `count` crops
        are cut: 1 is the centre crop (``crops(x, 1)[0]`` equals ``self(x)``),
        3 adds the start and the end of the longer side. Training, validation,
        prediction and the timeline all reach the model through here.
        """
        if count not in CROPS:
            raise ValueError(f"crops must be one of {CROPS}, got {count}")
        frames = _uint8_frames(frames)
        t, h, w, _ = frames.shape
        out_h, out_w = self.resize_to or _short_side_size(h, w, self.size)
        if (out_h, out_w) != (h, w):
            frames = _pil_resize(frames, out_h, out_w, RESAMPLE[self.resample])
        video = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (T, C, H, W) uint8 view
        out = []
        for box in crop_boxes(video.shape[-2:], self.crop, count):
            crop = _crop_at(video, self.crop, box)
            x = _as_float(crop.numpy(), self.rescale)
            x -= np.asarray(self.mean, dtype=np.float32).reshape(3, 1, 1)
            x /= np.asarray(self.std, dtype=np.float32).reshape(3, 1, 1)
            out.append(torch.from_numpy(x))
        return torch.stack(out)


def crop_boxes(shape: tuple[int, int], crop: tuple[int, int], count: int) -> list[tuple[int, int]]:
    """(top, left) of `count` crops of size `crop` in a frame of `shape` (H, W): 1 is the centre;
    3 are the start, centre and end of the longer side. A frame smaller than the crop is padded
    around its centre, as transformers does: offsets are then negative."""
    (h, w), (ch, cw) = shape, crop
    top, left = (h - ch) // 2, (w - cw) // 2
    if count == 1 or (h < ch or w < cw):
        return [(top, left)] * count
    if w >= h:
        return [(top, 0), (top, left), (top, w - cw)]
    return [(0, left), (top, left), (h - ch, left)]


def _crop_at(video: torch.Tensor, crop: tuple[int, int], box: tuple[int, int]) -> torch.Tensor:
    """The ``crop`` of ``(..., H, W)`` at (top, left); zero padding where it reaches outside the frame."""
    (ch, cw), (top, left) = crop, box
    h, w = video.shape[-2:]
    if top < 0 or left < 0 or top + ch > h or left + cw > w:
        return center_crop(video, crop)
    return video[..., top : top + ch, left : left + cw]


def to_float(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``uint8 (T, H, W, C)`` -> ``float32 (T, C, H, W)`` in [0, 1]."""
    return torch.from_numpy(_as_float(_uint8_frames(frames).transpose(0, 3, 1, 2), 1 / 255))


def normalize(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(video - mean) / std`` per channel of float ``(T, C, H, W)`` (any leading dims)."""
    mean_t = torch.as_tensor(mean, dtype=video.dtype, device=video.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=video.dtype, device=video.device).view(-1, 1, 1)
    return (video - mean_t) / std_t


def center_crop(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centre ``(h, w)`` of ``(..., H, W)``; zero padding where the frame is smaller, as transformers does."""
    ch, cw = size
    h, w = video.shape[-2:]
    if h < ch or w < cw:  # pad to at least the crop, centred (the extra pixel goes before)
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        video = F.pad(video, ((pw + 1) // 2, pw // 2, (ph + 1) // 2, ph // 2))
        h, w = video.shape[-2:]
    top, left = (h - ch) // 2, (w - cw) // 2
    return video[..., top : top + ch, left : left + cw]


# --- helpers -----------------------------------------------------------------


def _short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(height, width) with the shorter side `size`; the longer one rounded down, as transformers does."""
    out_w, out_h = scaled_size(w, h, size)
    return out_h, out_w


def _uint8_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} with shape {frames.shape}")
    return frames


def _as_float(video: np.ndarray, scale: float) -> np.ndarray:
    """A uint8 array in any memory order -> contiguous float32 times `scale`.

    In numpy rather than torch: on a busy two-core machine torch's thread pool
    made these few element-wise passes over a clip ten times slower.
    """
    out = np.empty(video.shape, dtype=np.float32)
    np.copyto(out, video)
    out *= np.float32(scale)
    return out


def _pil_resize(frames: np.ndarray, height: int, width: int, resample: int) -> np.ndarray:
    """uint8 (T, H, W, C) resized frame by frame with Pillow, rounding to uint8 as the processor does."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), resample=resample)) for f in frames])


def _find_config(backbone: str) -> tuple[Path | None, str]:
    """(processor config file or None, a description of where it was looked for)."""
    from .models.hub import resolve_backbone

    path = Path(backbone).expanduser()
    if path.is_file():
        return path, str(path)
    if not path.is_dir():  # a hub id: its folder in the local hub cache (or BackboneError saying how to fetch it)
        folder = Path(resolve_backbone(backbone))
        where = f"backbone {backbone!r} (local hub cache)"
    else:
        folder, where = path, f"backbone folder {path}"
    for name in CONFIG_FILES:
        if (folder / name).is_file():
            return folder / name, (str(folder / name) if folder == path else backbone)
    return None, where


def _parse_size(size: Any, source: str) -> tuple[int, tuple[int, int] | None]:
    """(short side, exact (h, w) or None) from a processor's ``size``."""
    if isinstance(size, (int, float)) and not isinstance(size, bool):
        return int(size), None
    if isinstance(size, (list, tuple)) and len(size) == 2:  # (height, width), as some old configs store it
        return int(size[0]), (int(size[0]), int(size[1]))
    if isinstance(size, dict):
        if "shortest_edge" in size:
            return int(size["shortest_edge"]), None
        if "height" in size and "width" in size:
            h, w = int(size["height"]), int(size["width"])
            return h, (h, w)
    raise ConfigError(
        f"{source}: size {size!r} is not understood; expected a number, {{'shortest_edge': N}} or {{'height': H, 'width': W}}"
    )


def _parse_crop(crop: Any, source: str) -> tuple[int, int]:
    if isinstance(crop, (int, float)) and not isinstance(crop, bool):
        return int(crop), int(crop)
    if isinstance(crop, dict) and "height" in crop and "width" in crop:
        return int(crop["height"]), int(crop["width"])
    if isinstance(crop, (list, tuple)) and len(crop) == 2:
        return int(crop[0]), int(crop[1])
    raise ConfigError(f"{source}: crop_size {crop!r} is not understood; expected a number or {{'height': H, 'width': W}}")


def _resample_name(value: Any, source: str) -> str:
    if isinstance(value, str):
        name = value.lower().removeprefix("pilimageresampling.").removeprefix("resampling.")
        if name in RESAMPLE:
            return name
    else:
        for name, code in RESAMPLE.items():
            if value == code:
                return name
    raise ConfigError(f"{source}: resample {value!r} is not one of {list(RESAMPLE)} (or their Pillow codes 0-5)")


def _triple(values: Any) -> tuple[float, float, float]:
    if isinstance(values, (int, float)):
        return (float(values),) * 3
    return tuple(float(v) for v in values)


def _int_pair(value: Any) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    return tuple(int(v) for v in value)
