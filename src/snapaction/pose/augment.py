"""Augmenting normalised pose sequences: mirror, time warp, rotation, scale, shift, joint dropout.

Pure functions on arrays with joints in `skeleton.NAMES` order; randomness
only from the numpy ``Generator`` passed in. Time only ever runs forwards: a
motion and its reverse are different classes (raise vs lower).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import PoseSequence, resample_sequence
from .skeleton import MIRROR


def mirror_points(points: np.ndarray) -> np.ndarray:
    """``(..., 33, C)`` points seen in a mirror: x negated, every left joint swapped with its right twin."""
    out = points[..., MIRROR, :].copy()
    out[..., 0] = -out[..., 0]
    return out


def _mirror_hands(values: np.ndarray) -> np.ndarray:
    """``(T, 2, ..., 2)`` hand values seen in a mirror: the two hands swapped, x negated."""
    out = values[:, ::-1].copy()
    out[..., 0] = -out[..., 0]
    return out


def mirror_sequence(seq: PoseSequence) -> PoseSequence:
    """`seq` mirrored left to right (body, hands and root motion); mirroring twice is the identity."""
    root = seq.root.copy()
    root[:, 0] = -root[:, 0]
    return PoseSequence(mirror_points(seq.points), mirror_points(seq.world), seq.visibility[:, MIRROR].copy(), root,
                        seq.body.copy(), _mirror_hands(seq.hand_shape), _mirror_hands(seq.hand_frame),
                        _mirror_hands(seq.hand_body), seq.hand_seen[:, ::-1].copy())


def warp_positions(length: int, out_length: int, rng: np.random.Generator, min_span: float = 0.8, strength: float = 0.15) -> np.ndarray:
    """float64 (out_length,) increasing times in [0, length-1]: a random window of at least `min_span` of the clip, unevenly paced.

    The window is the speed change (a shorter window plays slower); the pace
    ``u + a sin(pi u)`` with ``|a| <= strength < 1/pi`` is monotone, so time
    never runs backwards.
    """
    span = rng.uniform(min_span, 1.0)
    start = rng.uniform(0.0, 1.0 - span)
    u = np.linspace(0.0, 1.0, out_length)
    u = u + rng.uniform(-strength, strength) * np.sin(np.pi * u)
    return (start + span * u) * (length - 1)


def rotate_points(points: np.ndarray, angle: float) -> np.ndarray:
    """``(..., C)`` points turned by `angle` radians in the image plane (x, y); other coordinates kept."""
    c, s = np.cos(angle), np.sin(angle)
    out = points.copy()
    out[..., 0] = c * points[..., 0] - s * points[..., 1]
    out[..., 1] = s * points[..., 0] + c * points[..., 1]
    return out


@dataclass(frozen=True)
class AugmentSettings:
    """How strong each augmentation is (the defaults suit 10-30 clips per class)."""

    mirror: bool = True
    min_span: float = 0.8
    warp: float = 0.15
    max_rotation: float = 0.15  # radians, about 9 degrees
    scale: float = 0.1  # relative, uniform in [1 - scale, 1 + scale]
    shift: float = 0.05  # torso lengths
    jitter: float = 0.01  # torso lengths, per joint and frame
    dropout: float = 0.05  # chance a joint's visibility is zeroed in a frame


def augment_sequence(seq: PoseSequence, rng: np.random.Generator, length: int, settings: AugmentSettings = AugmentSettings()) -> PoseSequence:
    """One random variant of `seq`, resampled to `length` steps.

    Mirror (half the time, if on), time warp, in-plane rotation, scale,
    shift, coordinate jitter and joint dropout (visibility set to 0, position
    replaced by the joint's previous frame: a missed detection held).
    """
    if settings.mirror and rng.random() < 0.5:
        seq = mirror_sequence(seq)
    seq = resample_sequence(seq, length, warp_positions(seq.length, length, rng, settings.min_span, settings.warp))
    angle = rng.uniform(-settings.max_rotation, settings.max_rotation)
    scale = rng.uniform(1 - settings.scale, 1 + settings.scale)
    points = rotate_points(seq.points, angle) * scale
    points[..., :2] += rng.uniform(-settings.shift, settings.shift, size=2)
    points = points + rng.normal(0.0, settings.jitter, size=points.shape)
    world = rotate_points(seq.world, angle)
    root = seq.root.copy()
    root[:, :2] = rotate_points(root[:, :2], angle) * scale
    visibility = seq.visibility.copy()
    drop = rng.random(visibility.shape) < settings.dropout  # (T, 33)
    drop[0] = False
    for t in range(1, length):
        points[t, drop[t]] = points[t - 1, drop[t]]
        world[t, drop[t]] = world[t - 1, drop[t]]
    visibility[drop] = 0.0
    has_body = seq.body.max() > 0  # a clip with no body keeps its zeros: shifting them would invent one
    if not has_body:
        points, world, root = seq.points.copy(), seq.world.copy(), seq.root.copy()
    hand_shape = rotate_points(seq.hand_shape, angle)
    hand_shape = hand_shape + rng.normal(0.0, settings.jitter * 2, size=hand_shape.shape) * (seq.hand_seen[..., None, None] > 0)
    hand_frame = rotate_points(seq.hand_frame, angle) * scale
    hand_body = rotate_points(seq.hand_body, angle) * scale
    return PoseSequence(points.astype(np.float32), world.astype(np.float32), visibility, root.astype(np.float32),
                        seq.body, hand_shape.astype(np.float32), hand_frame.astype(np.float32),
                        hand_body.astype(np.float32), seq.hand_seen)
