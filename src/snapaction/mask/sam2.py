"""SAM 2 masks through transformers (`Sam2VideoModel`), prompted automatically and propagated through the clip.

The prompt, in order of preference: the clip's own ``point``/``box`` from the
manifest; else a box around the person MediaPipe's person segmentation finds
(with the pose extra installed); else a box around what moves, on the frame
where most moves (`motion.motion_masks`). SAM 2 segments the prompted frame and propagates the
object forwards and backwards through the frames it is given. With no prompt
at all (nothing found, nothing moves) the masks are empty, and `snapaction mask`
lists the clip.

Frames are resized to the checkpoint's square input and normalised with its
own mean and std (read from its processor config) in torch: transformers'
image processor for SAM 2 needs torchvision, which SnapAction does not use.
The checkpoint must be on disk (hub cache or a folder): nothing is downloaded
in the middle of a run.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np


_loaded: dict[str, tuple] = {}
_lock = threading.Lock()


def resolve_checkpoint(checkpoint: str) -> Path:
    """The local folder of a SAM 2 checkpoint (a folder, or a hub id in the local hub cache); one sentence when absent.

    Never downloads: a mask run does not stop midway to fetch a model."""
    from ..models.hub import local_checkpoint

    return Path(local_checkpoint(checkpoint, "SAM 2 checkpoint", "--mask-checkpoint",
                                 "mask with person or motion, which need no download", download=False))


def load_sam2(checkpoint: str):
    """(model, video processor) of a SAM 2 checkpoint, loaded once per process."""
    with _lock:
        if checkpoint not in _loaded:
            folder = resolve_checkpoint(checkpoint)
            from transformers import Sam2VideoModel
            from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

            model = Sam2VideoModel.from_pretrained(folder).eval()
            _loaded[checkpoint] = (model, Sam2VideoVideoProcessor.from_pretrained(folder))
        return _loaded[checkpoint]


def auto_prompt(frames: np.ndarray):
    """(frame index, Prompt) to start SAM 2 from: a person's box, else the box of what moves most; None when neither."""
    import importlib.util

    from .settings import Prompt
    from .motion import motion_masks

    if importlib.util.find_spec("mediapipe") is not None:
        from .person import person_masks

        for i, mask in enumerate(person_masks(frames)):
            if mask.mean() > 0.01:
                return i, Prompt(box=_box(mask))
    moving = motion_masks(frames)
    areas = moving.sum(axis=(1, 2))
    if areas.max(initial=0) == 0:
        return None
    i = int(np.argmax(areas))
    return i, Prompt(box=_box(moving[i]))


def _box(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def sam2_masks(frames: np.ndarray, checkpoint: str, prompt=None, start: int = 0) -> np.ndarray:
    """bool (T, H, W) masks of one object through uint8 (T, H, W, 3) frames; `prompt` (a `Prompt`, pixels of these
    frames) on frame `start`, or found by `auto_prompt` when None."""
    import torch

    frames = np.asarray(frames)
    t, h, w = frames.shape[:3]
    if prompt is None:
        found = auto_prompt(frames)
        if found is None:
            return np.zeros((t, h, w), bool)
        start, prompt = found
    model, processor = load_sam2(checkpoint)
    side_h, side_w = processor.size["height"], processor.size["width"]
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0  # (T, 3, H, W)
    video = torch.nn.functional.interpolate(video, (side_h, side_w), mode="bilinear", align_corners=False, antialias=True)
    video = (video - mean) / std
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

    session = Sam2VideoInferenceSession(video=video, video_height=h, video_width=w, dtype=torch.float32)
    points, labels = [], []
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        points += [(x0, y0), (x1, y1)]
        labels += [2, 3]  # SAM's labels for a box's top-left and bottom-right corners
    if prompt.point is not None:
        points.append(tuple(prompt.point))
        labels.append(1)
    coords = torch.tensor(points, dtype=torch.float32) * torch.tensor([side_w / w, side_h / h])
    obj = session.obj_id_to_idx(1)
    session.add_point_inputs(obj, start, {"point_coords": coords.view(1, 1, -1, 2),
                                          "point_labels": torch.tensor(labels, dtype=torch.int32).view(1, 1, -1)})
    session.obj_with_new_inputs = [1]
    out = np.zeros((t, h, w), bool)
    with torch.no_grad():
        model(inference_session=session, frame_idx=start)
        for reverse in (False, True):
            for step in model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=reverse):
                mask = processor.post_process_masks([step.pred_masks], [[h, w]], [[side_h, side_w]])[0]
                out[step.frame_idx] = mask[0, 0].numpy()
    return out
