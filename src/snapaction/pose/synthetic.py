"""Synthetic landmark clips of a stick figure, for tests and benchmarks (MediaPipe needs a real person; these do not).

Motions are functions of the phase u in [0, 1] over the clip. ``raise_arms``
and ``lower_arms`` are the same motion forwards and backwards: every single
frame of one also occurs in the other, so only time order tells them apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .landmarks import Landmarks
from .skeleton import J, NUM_JOINTS


def _ease(u):
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0, 1))


MOTIONS = {
    # name: u -> (left arm abduction, right arm abduction, left elbow, right elbow, squat depth), radians / [0, 1]
    "raise_arms": lambda u: (0.2 + 2.7 * _ease(u), 0.2 + 2.7 * _ease(u), 0.2, 0.2, 0.0),
    "lower_arms": lambda u: (0.2 + 2.7 * _ease(1 - u), 0.2 + 2.7 * _ease(1 - u), 0.2, 0.2, 0.0),
    "squat": lambda u: (0.3, 0.3, 0.3, 0.3, np.sin(np.pi * np.clip(u, 0, 1)) * 0.9),
    "wave": lambda u: (0.3, 2.2, 0.2, 0.8 + 0.6 * np.sin(4 * np.pi * u), 0.0),
}


def skeleton_pose(la, ra, le, re, squat, yaw=0.0) -> np.ndarray:
    """float64 (33, 3) world-like points in metres (x right in the image, y down, z towards the camera negative), mid-hip at 0."""
    p = np.zeros((NUM_JOINTS, 3))
    tilt = 0.5 * squat
    for side, name in ((1, "left"), (-1, "right")):  # facing the camera: the person's left is image right
        p[J[f"{name}_hip"]] = (0.1 * side, 0, 0)
        p[J[f"{name}_shoulder"]] = (0.18 * side, -0.5 * np.cos(tilt), -0.5 * np.sin(tilt))
        abd, elbow = (la, le) if side == 1 else (ra, re)
        sh = p[J[f"{name}_shoulder"]]
        up = np.array([side * np.sin(abd), np.cos(abd), 0.0])
        fore_angle = abd + elbow
        fore = np.array([side * np.sin(fore_angle), np.cos(fore_angle), -0.1])
        p[J[f"{name}_elbow"]] = sh + 0.3 * up
        p[J[f"{name}_wrist"]] = p[J[f"{name}_elbow"]] + 0.27 * fore
        for k, (fw, off) in zip(("pinky", "index", "thumb"), ((0.07, -0.02), (0.09, 0.0), (0.05, 0.03))):
            p[J[f"{name}_{k}"]] = p[J[f"{name}_wrist"]] + fw * fore + (off * side, 0, 0)
        h, kn = 1.3 * squat, 2.4 * squat
        p[J[f"{name}_knee"]] = p[J[f"{name}_hip"]] + 0.45 * np.array([0.03 * side, np.cos(h), -np.sin(h)])
        p[J[f"{name}_ankle"]] = p[J[f"{name}_knee"]] + 0.42 * np.array([0.0, np.cos(h - kn), -np.sin(h - kn)])
        p[J[f"{name}_heel"]] = p[J[f"{name}_ankle"]] + (0, 0.05, 0.05)
        p[J[f"{name}_foot_index"]] = p[J[f"{name}_ankle"]] + (0.02 * side, 0.07, -0.15)
    neck = (p[J["left_shoulder"]] + p[J["right_shoulder"]]) / 2
    p[J["nose"]] = neck + (0, -0.17, -0.08)
    for side, name in ((1, "left"), (-1, "right")):
        p[J[f"{name}_eye_inner"]] = p[J["nose"]] + (0.015 * side, -0.035, 0.01)
        p[J[f"{name}_eye"]] = p[J["nose"]] + (0.03 * side, -0.037, 0.015)
        p[J[f"{name}_eye_outer"]] = p[J["nose"]] + (0.045 * side, -0.035, 0.02)
        p[J[f"{name}_ear"]] = p[J["nose"]] + (0.075 * side, -0.02, 0.09)
    p[J["mouth_left"]] = p[J["nose"]] + (0.025, 0.035, 0.005)
    p[J["mouth_right"]] = p[J["nose"]] + (-0.025, 0.035, 0.005)
    c, s = np.cos(yaw), np.sin(yaw)
    return p @ np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])


def synthetic_landmarks(motion: str, rng: np.random.Generator, num_frames: int = 16, noise: float = 0.004,
                        missing: float = 0.05, size: tuple[int, int] = (1280, 720), name: str | None = None) -> Landmarks:
    """`Landmarks` of a stick figure doing `motion` (a key of `MOTIONS`) at a random place, size, pace and yaw.

    `noise` is the standard deviation of the image coordinates' noise; each
    frame is missed (no person) with probability `missing`, never all.
    """
    width, height = size
    start, end = rng.uniform(0, 0.3), rng.uniform(0.7, 1.0)  # the pace varies: a middle frame alone says little
    ppm = height * rng.uniform(0.25, 0.45)  # pixels per metre: the figure is 45-80 % of the frame's height
    floor = (rng.uniform(0.85, 0.97) * height, rng.uniform(0.3, 0.7) * width)
    yaw = rng.uniform(-0.4, 0.4)
    world = np.stack([skeleton_pose(*MOTIONS[motion]((u - start) / (end - start)), yaw=yaw)
                      for u in (np.arange(num_frames) + 0.5) / num_frames])  # (T, 33, 3)
    feet = world[:, [J["left_heel"], J["right_heel"]], 1].max(axis=1)  # (T,) the feet stay on the floor
    image = np.empty_like(world)
    image[..., 0] = (floor[1] + world[..., 0] * ppm) / width
    image[..., 1] = (floor[0] + (world[..., 1] - feet[:, None]) * ppm) / height
    image[..., 2] = world[..., 2] * ppm / width
    image[..., :2] += rng.normal(0, noise, image[..., :2].shape)
    world = world + rng.normal(0, noise * 2, world.shape)
    present = rng.random(num_frames) >= missing
    if not present.any():
        present[num_frames // 2] = True
    visibility = np.clip(rng.normal(0.95, 0.03, (num_frames, NUM_JOINTS)), 0, 1)
    image[~present], world[~present], visibility[~present] = np.nan, np.nan, 0.0
    times = (np.arange(num_frames) + 0.5) / num_frames * 3.0
    return Landmarks(image.astype(np.float32), world.astype(np.float32), visibility.astype(np.float32), present,
                     times, width, height, Path(name or f"synthetic-{motion}.mp4"))


def synthetic_set(motions: list[str], per_class: int, rng: np.random.Generator, **kwargs) -> tuple[list[Landmarks], np.ndarray]:
    """`per_class` synthetic clips of each motion and their int64 (N,) labels (index into `motions`)."""
    clips, labels = [], []
    for label, motion in enumerate(motions):
        for i in range(per_class):
            clips.append(synthetic_landmarks(motion, rng, name=f"synthetic-{motion}-{i}.mp4", **kwargs))
            labels.append(label)
    return clips, np.array(labels, np.int64)
