"""Seeing what the pose model sees: a PNG strip of frames with the skeleton drawn, and the skeleton as JSON for a web overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..video import probe, read_frames

from .landmarks import Landmarks, grid_indices
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


HAND_BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))
"""MediaPipe Hands' 21-point connections (``mp.solutions.hands.HAND_CONNECTIONS``)."""


def draw_hands(frame: np.ndarray, hands: np.ndarray, present: np.ndarray) -> np.ndarray:
    """`frame` with each found hand (``hands`` (2, 21, 3) in [0, 1], ``present`` (2,)) drawn: left hand blue, right orange."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    h, w = frame.shape[:2]
    line = max(1, round(min(w, h) / 200))
    for side, colour in ((0, (80, 160, 255)), (1, (255, 170, 40))):
        if not present[side]:
            continue
        px = hands[side, :, :2] * (w, h)
        for a, b in HAND_BONES:
            draw.line([tuple(px[a]), tuple(px[b])], fill=colour, width=line)
    return np.asarray(image)


def mark_missing(frame: np.ndarray, text: str) -> np.ndarray:
    """`frame` with a red border and `text` in its top-left corner (a frame where the model found no body)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    h, w = frame.shape[:2]
    edge = max(2, round(min(w, h) / 60))
    draw.rectangle([0, 0, w - 1, h - 1], outline=(230, 40, 40), width=edge)
    draw.rectangle([edge, edge, edge + 7 * len(text) + 6, edge + 14], fill=(230, 40, 40))
    draw.text((edge + 3, edge + 2), text, fill=(255, 255, 255))
    return np.asarray(image)


def write_preview(clip_path: str | Path, out_png: str | Path, frames: int = 6, size: int = 240, hands: bool = True) -> Path:
    """Write a PNG strip of `frames` frames spread over the clip (short side `size` px), with the skeleton drawn.

    Frames with no body found get a red border and "no body" ("nobody in view"
    when no hand was found either). Returns the PNG's path; `preview` also says what was seen.
    """
    return preview(clip_path, out_png, frames, size, hands)[0]


def preview(clip_path: str | Path, out_png: str | Path, frames: int = 6, size: int = 240, hands: bool = True) -> tuple[Path, dict]:
    """`write_preview`, returning (PNG path, what was seen: ``{"frames", "body", "hands"}``)."""
    from PIL import Image

    from .landmarks import frames_landmarks

    info = probe(clip_path)
    indices = grid_indices(info.num_frames, frames)
    size = size if size < min(info.width, info.height) else None
    pixels = read_frames(clip_path, indices, size=size, info=info)
    found = frames_landmarks(pixels, indices / max(info.fps, 1e-9), info.width, info.height, Path(clip_path), hands)
    drawn = []
    for i, f in enumerate(pixels):
        f = draw_hands(f, found.hands[i], found.hand_present[i])
        if found.present[i]:
            f = draw_skeleton(f, found.image[i, :, :2], found.visibility[i])
        else:
            f = mark_missing(f, "no body" if found.hand_present[i].any() else "nobody in view")
        drawn.append(f)
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
    return out_png, found.seen()
