"""Seeing what the pose model sees: a PNG strip of frames with the skeleton drawn, and the skeleton as JSON for a web overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..video import probe, read_frames

from .landmarks import Landmarks, detect, grid_indices
from .skeleton import CONNECTIONS, NAMES

VISIBLE = 0.5
"""Joints and bones below this visibility are drawn faint."""


def skeleton_json(landmarks: Landmarks) -> dict:
    """JSON-ready skeleton: frame size, joint names, bones, and per frame its time, whether a person was found and 33 [x, y, visibility].

    x and y are fractions of the frame's width and height (what an overlay
    scales by the displayed size); frames without a person have ``points: null``.
    """
    frames = []
    for t in range(landmarks.num_frames):
        points = None
        if landmarks.present[t]:
            xy, vis = landmarks.image[t, :, :2], landmarks.visibility[t]
            points = [[round(float(x), 5), round(float(y), 5), round(float(v), 3)] for (x, y), v in zip(xy, vis)]
        frames.append({"time": round(float(landmarks.times[t]), 4), "present": bool(landmarks.present[t]), "points": points})
    return {"width": landmarks.width, "height": landmarks.height, "names": list(NAMES),
            "connections": [list(c) for c in CONNECTIONS], "frames": frames}


def draw_skeleton(frame: np.ndarray, points: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """``uint8 (H, W, 3)`` copy of `frame` with the skeleton of ``points`` (33, 2 in [0, 1]) drawn on it."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    h, w = frame.shape[:2]
    px = points * (w, h)
    line = max(2, round(min(w, h) / 120))
    for a, b in CONNECTIONS:
        strong = min(visibility[a], visibility[b]) >= VISIBLE
        draw.line([tuple(px[a]), tuple(px[b])], fill=(0, 255, 120) if strong else (90, 130, 110), width=line if strong else 1)
    for (x, y), v in zip(px, visibility):
        r = line + 1
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 60, 60) if v >= VISIBLE else (120, 80, 80))
    return np.asarray(image)


def write_preview(clip_path: str | Path, out_png: str | Path, frames: int = 6, size: int = 240) -> Path:
    """Write a PNG strip of `frames` frames spread over the clip (short side `size` px), with the skeleton drawn.

    Frames with no person found are shown without a skeleton. Returns the PNG's path.
    """
    from PIL import Image

    info = probe(clip_path)
    indices = grid_indices(info.num_frames, frames)
    size = size if size < min(info.width, info.height) else None
    pixels = read_frames(clip_path, indices, size=size, info=info)
    image, _, visibility, present = detect(pixels)
    drawn = [draw_skeleton(f, image[i, :, :2], visibility[i]) if present[i] else f for i, f in enumerate(pixels)]
    import io

    from ..errors import SnapActionError
    from ..files import atomic_write  # makes the folder, and never leaves half a PNG

    out_png = Path(out_png)

    buf = io.BytesIO()
    Image.fromarray(np.concatenate(drawn, axis=1)).save(buf, format="PNG")
    try:
        atomic_write(Path(out_png), buf.getvalue())
    except OSError as err:
        raise SnapActionError(f"cannot write the preview {out_png}: {err.strerror or err}; pass --out a path you can write to") from None
    return out_png
