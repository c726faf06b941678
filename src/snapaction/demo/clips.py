"""Rendering the demo clips: four classes in two time-reversed pairs (pure functions, no files).

"pick" lifts an object off a surface; "drop" is that clip played backwards (the
object falls onto the surface, speeding up as it falls). "open" grows a shape;
"close" is that clip played backwards (the shape shrinks). The reversed class of
a pair is made by rendering the forward clip and reversing its frames, so any
single frame is equally likely in both classes of a pair: only the order of the
motion tells them apart. Nothing moves left or right in a class-specific way, so
horizontal flips (a training augmentation) never turn one class into another.

Every clip draws its own background (flat, gradient, blobs, stripes, checks),
object shape, size, colour, speed, start and end positions, one or two
distractors whose motion does not depend on the class (static, or drifting in a
uniformly random direction, so reversed they look the same), and camera noise
(sensor noise, flicker, a one-pixel shake).

A frame is ``uint8 (H, W, C)`` RGB and a clip ``uint8 (T, H, W, C)``, as
everywhere in SnapAction. `snapaction.demo.dataset` writes them as a dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import did_you_mean

CLASSES = ("pick", "drop", "open", "close")

# class -> (forward motion, played backwards?)
_MOTIONS = {"pick": ("lift", False), "drop": ("lift", True), "open": ("grow", False), "close": ("grow", True)}
_MARGIN = 2  # canvas border in pixels, room for the camera shake
SHAPES = ("disc", "ellipse", "square", "diamond", "triangle", "ring", "cross")


@dataclass(frozen=True)
class Sprite:
    """One flat-coloured shape: half width and height in pixels at scale 1, turned by `angle` radians."""

    shape: str
    half: tuple[float, float]
    angle: float
    color: np.ndarray
    """float32 (3,) RGB in [0, 1]."""
    shading: float = 0.0
    """Top-to-bottom brightness slope across the shape."""

    def extent(self) -> tuple[float, float, float]:
        """How far the shape reaches above, below and to either side of its centre at scale 1, in pixels."""
        r = 1.5 * max(self.half) + 2
        grid = np.arange(-r, r, 0.25)
        dx, dy = np.meshgrid(grid, grid)
        inside = _coverage(self, dx, dy, 1.0)[0] > 0.5
        ys, xs = dy[inside], dx[inside]
        return float(-ys.min()), float(ys.max()), float(np.abs(xs).max())


@dataclass(frozen=True, eq=False)
class ClipPlan:
    """Everything one clip shows; `draw_clip` turns it into frames. Positions are (x, y) frame pixels."""

    size: int
    background: np.ndarray
    """float32 (size + 4, size + 4, 3): the static scene, with a border for the shake."""
    sprite: Sprite
    centers: np.ndarray
    """float (T, 2): the object's centre in every frame."""
    scales: np.ndarray
    """float (T,): the object's size relative to `sprite.half`."""
    shadow: np.ndarray | None
    """float (T, 4) x, y, half width, opacity of the object's shadow, or None."""
    distractors: tuple[tuple[Sprite, np.ndarray, bool], ...]
    """(sprite, centres (T, 2), drawn in front of the object?) for each distractor."""
    shake: np.ndarray
    """int (T, 2): camera offset in pixels."""
    gain: np.ndarray
    """float (T,): brightness flicker."""
    noise_sigma: float
    noise_seeds: np.ndarray
    """int (T,): seed of each frame's sensor noise (kept per frame so a reversed plan reverses the noise too)."""

    @property
    def num_frames(self) -> int:
        return len(self.centers)

    def reversed(self) -> ClipPlan:
        """The same clip played backwards."""
        return replace(
            self,
            centers=self.centers[::-1],
            scales=self.scales[::-1],
            shadow=None if self.shadow is None else self.shadow[::-1],
            distractors=tuple((s, c[::-1], front) for s, c, front in self.distractors),
            shake=self.shake[::-1],
            gain=self.gain[::-1],
            noise_seeds=self.noise_seeds[::-1],
        )


def render_clip(kind: str, rng: np.random.Generator, size: int = 96, num_frames: int = 32) -> np.ndarray:
    """One random clip of class `kind` as ``uint8 (T, H, W, C)``, drawn from `rng`.

    The reversed class of a pair, given a generator in the same state, returns
    exactly the forward clip's frames in reverse order.
    """
    return draw_clip(plan_clip(kind, rng, size, num_frames))


def plan_clip(kind: str, rng: np.random.Generator, size: int = 96, num_frames: int = 32) -> ClipPlan:
    """The random choices behind `render_clip`: scene, object, trajectory, distractors, noise."""
    if kind not in _MOTIONS:
        raise ValueError(f"unknown demo class {kind!r}; the classes are {list(CLASSES)}.{did_you_mean(kind, CLASSES)}")
    if size < 16 or num_frames < 2:
        raise ValueError(f"a demo clip needs size >= 16 and num_frames >= 2, got size {size}, num_frames {num_frames}")
    motion, backwards = _MOTIONS[kind]
    plan = (_plan_lift if motion == "lift" else _plan_grow)(rng, size, num_frames)
    return plan.reversed() if backwards else plan


def draw_clip(plan: ClipPlan, with_object: bool = True) -> np.ndarray:
    """The frames of `plan` as ``uint8 (T, H, W, C)``; ``with_object=False`` leaves the object out."""
    n, m = plan.size, _MARGIN
    frames = np.empty((plan.num_frames, n, n, 3), np.uint8)
    for t in range(plan.num_frames):
        canvas = plan.background.copy()
        for sprite, centers, front in plan.distractors:
            if not front:
                _stamp(canvas, sprite, centers[t] + m, 1.0)
        if plan.shadow is not None:
            x, y, half_w, opacity = plan.shadow[t]
            shadow = Sprite("ellipse", (half_w, max(1.0, 0.2 * half_w)), 0.0, np.zeros(3, np.float32))
            _stamp(canvas, shadow, np.array([x + m, y + m]), 1.0, opacity)
        if with_object:
            _stamp(canvas, plan.sprite, plan.centers[t] + m, plan.scales[t])
        for sprite, centers, front in plan.distractors:
            if front:
                _stamp(canvas, sprite, centers[t] + m, 1.0)
        dx, dy = plan.shake[t] + m
        frame = canvas[dy : dy + n, dx : dx + n] * plan.gain[t]
        noise = np.random.default_rng(int(plan.noise_seeds[t])).standard_normal(frame.shape, dtype=np.float32)
        frame += plan.noise_sigma * noise
        frames[t] = np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8)
    return frames


def _plan_lift(rng: np.random.Generator, n: int, num_frames: int) -> ClipPlan:
    """An object resting on a surface rises off it (ease-out, so played backwards it falls)."""
    background = _background(rng, n + 2 * _MARGIN)
    surface_y = rng.uniform(0.6, 0.88) * n
    _paint_surface(background, rng, surface_y + _MARGIN)
    sprite = _sprite(rng, n, (0.07, 0.14), max_angle=0.35)
    up, down, side = sprite.extent()
    rest_y = surface_y - down
    room = rest_y - up - 0.04 * n  # how far the top can rise and stay in view
    lift = rng.uniform(min(0.2 * n, room), room)
    x0 = rng.uniform(side + 2, n - side - 2)
    x1 = float(np.clip(x0 + rng.uniform(-0.08, 0.08) * n, side + 2, n - side - 2))
    p = _progress(rng, num_frames)
    centers = np.stack([x0 + (x1 - x0) * p, rest_y - lift * p], axis=1)
    sprite = replace(sprite, color=_contrasting_color(rng, background, centers, side + _MARGIN))
    height = np.clip(lift * p / (0.5 * n), 0, 1)  # shadow fades and narrows as the object rises
    shadow = np.stack([centers[:, 0], np.full(num_frames, surface_y), side * (1.1 - 0.5 * height), 0.45 * (1 - height) ** 1.5], axis=1)
    return _finish(rng, n, num_frames, background, sprite, centers, np.ones(num_frames), shadow, surface_y)


def _plan_grow(rng: np.random.Generator, n: int, num_frames: int) -> ClipPlan:
    """A shape grows from small to large (played backwards it shrinks)."""
    background = _background(rng, n + 2 * _MARGIN)
    sprite = _sprite(rng, n, (0.18, 0.34), max_angle=math.pi)
    reach = max(sprite.extent()) + 1
    if reach > n / 2 - 1:  # a turned square can reach past its half size: shrink it to fit the frame
        sprite = replace(sprite, half=tuple(h * (n / 2 - 1) / reach for h in sprite.half))
        reach = n / 2 - 1
    center = rng.uniform(reach, n - reach, 2)
    start_scale = rng.uniform(0.2, 0.45)
    p = _progress(rng, num_frames)
    centers = np.repeat(center[None], num_frames, axis=0)
    sprite = replace(sprite, color=_contrasting_color(rng, background, centers, reach * 0.7 + _MARGIN))
    scales = start_scale + (1 - start_scale) * p
    return _finish(rng, n, num_frames, background, sprite, centers, scales, None, None)


def _finish(rng, n, num_frames, background, sprite, centers, scales, shadow, surface_y) -> ClipPlan:
    """Add distractors and camera noise, drawn the same way for every class."""
    distractors = []
    for k in range(int(rng.integers(1, 3))):
        d = _sprite(rng, n, (0.04, 0.08), max_angle=math.pi)
        _, down, side = d.extent()
        if k == 0 and surface_y is not None and rng.random() < 0.5:
            # a second object resting on the surface that never moves
            start = end = np.array([rng.uniform(side, n - side), surface_y - down])
        else:
            start = rng.uniform(0, n, 2)
            end = start
            if rng.random() < 0.6:  # drift in a uniformly random direction: reversed, the same distribution
                angle = rng.uniform(0, 2 * math.pi)
                end = start + rng.uniform(0.05, 0.25) * n * np.array([math.cos(angle), math.sin(angle)])
        f = np.linspace(0, 1, num_frames)[:, None]
        distractors.append((d, start + (end - start) * f, bool(rng.random() < 0.5)))
    shake = rng.integers(-1, 2, (num_frames, 2)) if rng.random() < 0.5 else np.zeros((num_frames, 2), np.int64)
    gain = 1 + rng.normal(0, rng.uniform(0, 0.03), num_frames)
    return ClipPlan(
        size=n,
        background=background,
        sprite=sprite,
        centers=centers,
        scales=scales,
        shadow=shadow,
        distractors=tuple(distractors),
        shake=shake,
        gain=gain,
        noise_sigma=float(rng.uniform(0.005, 0.04)),
        noise_seeds=rng.integers(0, 2**63 - 1, num_frames),
    )


def _progress(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """0 -> 1 over a random stretch of the clip (random start, length and ease-out), holding before and after."""
    duration = max(2, round(rng.uniform(0.3, 0.8) * num_frames))
    start = rng.uniform(0, max(0, num_frames - 1 - duration))
    u = np.clip((np.arange(num_frames) - start) / duration, 0, 1)
    return 1 - (1 - u) ** rng.uniform(1.0, 2.5)


def _color(rng: np.random.Generator) -> np.ndarray:
    return rng.random(3).astype(np.float32)


def _contrasting_color(rng, background: np.ndarray, centers: np.ndarray, radius: float) -> np.ndarray:
    """A colour that stands out from the background along the object's path."""
    lo = np.floor(centers.min(0) - radius).astype(int).clip(0)
    hi = np.ceil(centers.max(0) + radius + 2 * _MARGIN).astype(int)
    behind = background[lo[1] : hi[1], lo[0] : hi[0]].reshape(-1, 3).mean(0)
    tried = []
    for _ in range(30):
        color = _color(rng)
        if np.linalg.norm(color - behind) >= 0.45:
            return color
        tried.append(color)
    return max(tried, key=lambda c: np.linalg.norm(c - behind))


def _sprite(rng: np.random.Generator, n: int, half_range: tuple[float, float], max_angle: float) -> Sprite:
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    a = rng.uniform(*half_range) * n
    b = a * rng.uniform(0.55, 1.0) if shape in ("ellipse", "triangle", "cross") else a
    if rng.random() < 0.5:
        a, b = b, a
    return Sprite(shape, (a, b), float(rng.uniform(-max_angle, max_angle)), _color(rng), float(rng.uniform(-0.25, 0.25)))


def _distance(shape: str, u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance in pixels from the edge of a shape centred at 0 (negative inside)."""
    if shape == "disc":
        return np.hypot(u, v) - min(a, b)
    if shape == "ellipse":
        return (np.hypot(u / a, v / b) - 1) * min(a, b)
    if shape == "square":
        return np.maximum(np.abs(u) - a, np.abs(v) - b)
    if shape == "diamond":
        return (np.abs(u) / a + np.abs(v) / b - 1) * (a * b / math.hypot(a, b))
    if shape == "triangle":
        return np.maximum(v - b, (2 * b * np.abs(u) - a * (v + b)) / math.hypot(2 * b, a))
    if shape == "ring":
        r = min(a, b)
        return np.abs(np.hypot(u, v) - 0.72 * r) - 0.28 * r
    if shape == "cross":
        w = 0.32 * min(a, b)
        return np.minimum(np.maximum(np.abs(u) - a, np.abs(v) - w), np.maximum(np.abs(u) - w, np.abs(v) - b))
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(sprite: Sprite, dx: np.ndarray, dy: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """How much of each pixel the sprite covers (0..1) and its shading, at offsets (dx, dy) from its centre."""
    c, s = math.cos(sprite.angle), math.sin(sprite.angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    a, b = sprite.half[0] * scale, sprite.half[1] * scale
    cover = np.clip(0.5 - _distance(sprite.shape, u, v, a, b), 0, 1)
    return cover, 1 + sprite.shading * np.clip(dy / max(b, 1e-6), -1, 1)


def _stamp(canvas: np.ndarray, sprite: Sprite, center: np.ndarray, scale: float, opacity: float = 1.0) -> None:
    """Paint `sprite` onto `canvas` (in place), antialiased; only the pixels near it are touched."""
    r = 1.5 * max(sprite.half) * scale + 2
    x0, y0 = max(0, int(center[0] - r)), max(0, int(center[1] - r))
    x1, y1 = min(canvas.shape[1], int(center[0] + r) + 2), min(canvas.shape[0], int(center[1] + r) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - center[0]
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - center[1]
    cover, shade = _coverage(sprite, dx, dy, scale)
    alpha = (opacity * cover)[..., None]
    fill = np.clip(sprite.color * shade[..., None], 0, 1)
    region = canvas[y0:y1, x0:x1]
    region *= 1 - alpha
    region += alpha * fill


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 (n, n, 3): a flat colour, gradient, blobs, stripes or checks, with fine grain."""
    c1, c2 = 0.1 + 0.8 * rng.random(3), 0.1 + 0.8 * rng.random(3)
    yy, xx = np.mgrid[0:n, 0:n] / n
    angle = rng.uniform(0, 2 * math.pi)
    along = xx * math.cos(angle) + yy * math.sin(angle)
    kind = rng.integers(5)
    if kind == 0:
        t = np.zeros((n, n))
    elif kind == 1:
        t = (along - along.min()) / (np.ptp(along) + 1e-9)
    elif kind == 2:
        t = _upsample(rng.random((int(rng.integers(3, 7)),) * 2), n)
    elif kind == 3:
        t = 0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(2, 8) * along + rng.uniform(0, 2 * math.pi))
    else:
        across = -xx * math.sin(angle) + yy * math.cos(angle)
        f = rng.uniform(3, 8)
        t = (np.floor(along * f) + np.floor(across * f)) % 2
    t = t * rng.uniform(0.2, 0.8)
    image = c1 * (1 - t[..., None]) + c2 * t[..., None]
    image += rng.normal(0, rng.uniform(0, 0.03), image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def _paint_surface(canvas: np.ndarray, rng: np.random.Generator, top: float) -> None:
    """A table top from row `top` (antialiased edge) to the bottom, darker towards the viewer, in place."""
    n = canvas.shape[0]
    rows = np.arange(n) + 0.5
    alpha = np.clip(rows - top + 0.5, 0, 1)[:, None, None]
    color = 0.1 + 0.8 * rng.random(3)
    depth = np.clip((rows - top) / max(1.0, n - top), 0, 1)[:, None, None]
    streaks = rng.normal(0, rng.uniform(0, 0.05), (n, 1, 1))  # wood-like grain along the table
    surface = color * (1 - rng.uniform(0, 0.35) * depth) + streaks
    canvas *= 1 - alpha
    canvas += alpha * np.broadcast_to(surface, canvas.shape).astype(np.float32)
    edge = (np.abs(rows - top) < 1)[:, None, None]
    canvas[...] = np.where(edge, canvas * rng.uniform(0.7, 1.2), canvas).clip(0, 1)


def _upsample(small: np.ndarray, n: int) -> np.ndarray:
    """Bilinear upsampling of a small 2-D grid to (n, n)."""
    g0, g1 = small.shape
    def axis(g):
        pos = np.linspace(0, g - 1, n)
        i = np.minimum(np.floor(pos).astype(int), g - 2)
        return i, (pos - i)
    i, fi = axis(g0)
    rows = small[i] * (1 - fi)[:, None] + small[i + 1] * fi[:, None]
    j, fj = axis(g1)
    return rows[:, j] * (1 - fj) + rows[:, j + 1] * fj
