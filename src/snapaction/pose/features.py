"""From landmarks to features: fill gaps, normalise, resample, per-frame features, temporal statistics.

All pure functions on numpy arrays; ``T`` is time, 33 joints follow
`skeleton.NAMES`. The normalised form of a clip is a `PoseSequence`:
positions hip-centred (origin between the hips in every frame) and
torso-scaled (divided by the clip's median distance from the mid-shoulder to
the mid-hip), so neither where the person stands nor how large they appear
changes a feature. Where they move is kept apart, in ``root``.

Nothing in view is a fact, not an error: a clip whose frames show no body
gives zeros for the body (and ``body`` 0 in every frame), one without hands
zeros for the hands, and the classifier learns what such clips are.
Hands: each found hand's 21 points relative to its wrist over its palm
length (grip shape: opening and closing), its fingertip spread, the wrist's
place in the frame, and the wrist relative to the body where a body is found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .landmarks import Landmarks
from .skeleton import ANGLES, FEATURE_JOINTS, J, NAMES

_HIPS = (J["left_hip"], J["right_hip"])
_SHOULDERS = (J["left_shoulder"], J["right_shoulder"])
NUM_DCT = 3
"""Temporal DCT coefficients (1..NUM_DCT) per feature in `temporal_statistics`: the order-sensitive part."""
PERCENTILES = (25, 50, 75)
HAND_TIPS = (4, 8, 12, 16, 20)
"""Fingertips among MediaPipe Hands' 21 points (0 is the wrist, 9 the middle finger's knuckle: the palm length)."""


@dataclass(frozen=True)
class PoseSequence:
    """One clip's pose, normalised, every frame filled.

    ``points`` float32 (T, 33, 3): image landmarks in pixels, minus the mid-hip,
    divided by the torso length (x right, y down, z MediaPipe's depth, same scale);
    ``world`` float32 (T, 33, 3): MediaPipe's world landmarks, metres, hip-centred;
    ``visibility`` float32 (T, 33) in [0, 1];
    ``root`` float32 (T, 3): mid-hip x, y minus their clip median, in torso lengths,
    and the log of this frame's torso length over the median (towards the camera > 0).
    """

    points: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    root: np.ndarray
    body: np.ndarray | None = None
    """float32 (T,): 1 in frames where a body was found, 0 where it was filled in (or never seen). None: all 1."""
    hand_shape: np.ndarray | None = None
    """float32 (T, 2, 21, 2): each hand's points minus its wrist over its palm length (slot 0 left, 1 right); 0 when never seen."""
    hand_frame: np.ndarray | None = None
    """float32 (T, 2, 2): each wrist's place in the frame, from its centre, in units of the frame's short side."""
    hand_body: np.ndarray | None = None
    """float32 (T, 2, 2): each wrist minus the mid-hip, in torso lengths; 0 without a body."""
    hand_seen: np.ndarray | None = None
    """float32 (T, 2): 1 in frames where that hand was found."""

    def __post_init__(self):
        t = len(self.points)
        defaults = {"body": np.ones(t, np.float32), "hand_shape": np.zeros((t, 2, 21, 2), np.float32),
                    "hand_frame": np.zeros((t, 2, 2), np.float32), "hand_body": np.zeros((t, 2, 2), np.float32),
                    "hand_seen": np.zeros((t, 2), np.float32)}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)

    @property
    def length(self) -> int:
        return len(self.points)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Every per-frame array, in field order (what resampling and augmenting go through)."""
        return (self.points, self.world, self.visibility, self.root, self.body, self.hand_shape, self.hand_frame,
                self.hand_body, self.hand_seen)


def fill_missing(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(T, ...)`` values with the frames where ``present`` (bool (T,)) is False interpolated linearly in time.

    Frames before the first present frame hold its values, those after the
    last hold the last ones. At least one frame must be present.
    """
    keep = np.flatnonzero(present)
    if len(keep) == 0:
        raise ValueError("fill_missing needs at least one present frame")
    pos = np.interp(np.arange(len(values)), keep, np.arange(len(keep)))  # fractional rank among present frames
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(keep) - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (values.ndim - 1))
    return ((1 - w) * values[keep[lo]] + w * values[keep[hi]]).astype(values.dtype)


def resample(values: np.ndarray, length: int, positions: np.ndarray | None = None) -> np.ndarray:
    """``(T, ...)`` values read at `length` times by linear interpolation -> ``(length, ...)``.

    `positions` (float (length,), in [0, T-1]) picks the times; by default
    they are spread evenly from the first frame to the last.
    """
    t = len(values)
    if positions is None:
        positions = np.linspace(0, t - 1, length)
    positions = np.clip(np.asarray(positions, np.float64), 0, t - 1)
    lo = np.floor(positions).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (positions - lo).reshape((-1,) + (1,) * (values.ndim - 1))
    return ((1 - w) * values[lo] + w * values[hi]).astype(values.dtype)


def pose_sequence(landmarks: Landmarks, min_person_frames: float = 0.0) -> PoseSequence:
    """The normalised `PoseSequence` of a clip's `Landmarks`, frames without a body or hands filled in.

    Never refuses a clip: frames with no body found hold the neighbouring
    body's pose (interpolated) with ``body`` 0, and a clip with no body at
    all has a zero body; likewise per hand. A skeleton with no torso
    (shoulders on the hips) counts as no body. `min_person_frames` is kept
    for callers of the former signature; thin evidence is `thin_evidence`'s call.
    """
    t = landmarks.num_frames
    scale_px = np.array([landmarks.width, landmarks.height, landmarks.width], np.float32)  # square pixels
    present = landmarks.present.copy()
    points = np.zeros((t, 33, 3), np.float32)
    world = np.zeros((t, 33, 3), np.float32)
    visibility = np.zeros((t, 33), np.float32)
    root = np.zeros((t, 3), np.float32)
    hip = scale = None
    if present.any():
        px = fill_missing(landmarks.image * scale_px, present)
        hip = px[:, _HIPS].mean(axis=1)  # (T, 3)
        torso = np.linalg.norm(px[:, _SHOULDERS, :2].mean(axis=1) - hip[:, :2], axis=1)  # (T,)
        scale = float(np.median(torso[present]))
        if scale > 1e-6:
            points = (px - hip[:, None, :]) / scale
            root = np.concatenate([(hip[:, :2] - np.median(hip[:, :2], axis=0)) / scale,
                                   np.log(np.maximum(torso, 1e-6) / scale)[:, None]], axis=1)
            world_ok = present & np.isfinite(landmarks.world).all(axis=(1, 2))
            world = fill_missing(landmarks.world, world_ok) if world_ok.any() else points.copy()
            visibility = fill_missing(landmarks.visibility, present)
        else:
            present[:] = False
            hip = None
    hand_shape = np.zeros((t, 2, 21, 2), np.float32)
    hand_frame = np.zeros((t, 2, 2), np.float32)
    hand_body = np.zeros((t, 2, 2), np.float32)
    short = float(min(landmarks.width, landmarks.height)) or 1.0
    centre = np.array([landmarks.width / 2, landmarks.height / 2], np.float32)
    for side in range(2):
        seen = landmarks.hand_present[:, side]
        if not seen.any():
            continue
        hpx = fill_missing(landmarks.hands[:, side, :, :2] * scale_px[:2], seen)  # (T, 21, 2)
        wrist = hpx[:, 0]
        palm = float(np.median(np.linalg.norm(hpx[seen, 9] - hpx[seen, 0], axis=-1)))
        hand_shape[:, side] = (hpx - wrist[:, None]) / max(palm, 1e-6)
        hand_frame[:, side] = (wrist - centre) / short
        if hip is not None:
            hand_body[:, side] = (wrist - hip[:, :2]) / scale
    return PoseSequence(points.astype(np.float32), world.astype(np.float32), visibility.astype(np.float32), root.astype(np.float32),
                        present.astype(np.float32), hand_shape, hand_frame, hand_body, landmarks.hand_present.astype(np.float32))


def thin_evidence(seen: dict, fraction: float = 0.25) -> bool:
    """True when a body and hands were each found in fewer than `fraction` of the frames (at least one frame)."""
    need = max(1, math.ceil(fraction * seen["frames"] - 1e-9))
    return max(seen["body"], seen["hands"]) < need


def resample_sequence(seq: PoseSequence, length: int, positions: np.ndarray | None = None) -> PoseSequence:
    """`seq` read at `length` times (see `resample`)."""
    return PoseSequence(*(resample(a, length, positions) for a in seq.arrays()))


def joint_angles(points: np.ndarray) -> np.ndarray:
    """float32 (T, 8) angles in radians, [0, pi], of `skeleton.ANGLES` from ``(T, 33, 2 or 3)`` points."""
    a, b, c = (np.array(idx) for idx in zip(*[(a, b, c) for _, a, b, c in ANGLES]))
    u = points[:, a] - points[:, b]  # (T, 8, C)
    v = points[:, c] - points[:, b]
    if points.shape[-1] == 2:
        cross = np.abs(u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0])
    else:
        cross = np.linalg.norm(np.cross(u, v), axis=-1)
    return np.arctan2(cross, (u * v).sum(-1)).astype(np.float32)


def posture(seq: PoseSequence) -> np.ndarray:
    """float32 (T, 2): the torso's tilt from upright in the image (0 upright, 0.5 lying, 1 upside down: radians
    over pi) and the log aspect (width over height) of the body's feature joints; 0 where no body was ever seen.
    Hip-centring and torso scaling keep neither: they tell standing from lying (a fall) at a glance."""
    mid_shoulder = seq.points[:, _SHOULDERS, :2].mean(axis=1)  # from the mid-hip, which is the origin
    tilt = np.arctan2(np.abs(mid_shoulder[:, 0]), -mid_shoulder[:, 1]) / np.pi  # image y runs down
    pts = seq.points[:, FEATURE_JOINTS, :2]
    extent = pts.max(axis=1) - pts.min(axis=1)  # (T, 2)
    aspect = np.log(np.maximum(extent[:, 0], 1e-3) / np.maximum(extent[:, 1], 1e-3))
    has_body = float(seq.body.max() > 0)
    return (np.stack([tilt, aspect], axis=1) * has_body).astype(np.float32)


def frame_features(seq: PoseSequence) -> np.ndarray:
    """float32 (T, F) features per frame of a `PoseSequence`; names in `feature_names`.

    Kinematics: x, y of `skeleton.FEATURE_JOINTS` (normalised), joint angles
    from world landmarks (3D) and from image ones (2D), both over pi, root
    motion; then visibility of the feature joints; then the kinematics'
    velocities (per time step, central differences).
    """
    t = seq.length
    pos = seq.points[:, FEATURE_JOINTS, :2].reshape(t, -1)
    spread = np.linalg.norm(seq.hand_shape[:, :, HAND_TIPS], axis=-1).mean(-1)  # (T, 2): fingertips from the wrist
    hands = [seq.hand_shape[:, :, 1:].reshape(t, -1), spread, seq.hand_frame.reshape(t, -1), seq.hand_body.reshape(t, -1)]
    kin = np.concatenate([pos, joint_angles(seq.world) / np.pi, joint_angles(seq.points[..., :2]) / np.pi, seq.root,
                          posture(seq), *hands], axis=1)
    vel = np.gradient(kin, axis=0) if t > 1 else np.zeros_like(kin)
    seen = [seq.visibility[:, FEATURE_JOINTS], seq.body[:, None], seq.hand_seen]
    return np.concatenate([kin, *seen, vel], axis=1).astype(np.float32)


def feature_names() -> list[str]:
    """Names of the columns of `frame_features`."""
    pos = [f"{NAMES[j]}.{axis}" for j in FEATURE_JOINTS for axis in "xy"]
    kin = pos + [f"angle3d.{a[0]}" for a in ANGLES] + [f"angle2d.{a[0]}" for a in ANGLES] + ["root.x", "root.y", "root.log_scale"]
    kin += ["posture.tilt", "posture.log_aspect"]
    sides = ("left_hand", "right_hand")
    kin += [f"{h}.{k}.{axis}" for h in sides for k in range(1, 21) for axis in "xy"]
    kin += [f"{h}.spread" for h in sides] + [f"{h}.frame.{a}" for h in sides for a in "xy"] + [f"{h}.body.{a}" for h in sides for a in "xy"]
    seen = [f"visibility.{NAMES[j]}" for j in FEATURE_JOINTS] + ["body.seen"] + [f"{h}.seen" for h in sides]
    return kin + seen + [f"velocity.{k}" for k in kin]


def dct_basis(length: int, k: int = NUM_DCT) -> np.ndarray:
    """float32 (k, length) orthonormal DCT-II rows 1..k (row 0, the mean, left out)."""
    t = np.arange(length)
    rows = [np.cos(np.pi * m * (t + 0.5) / length) * math.sqrt(2 / length) for m in range(1, k + 1)]
    return np.array(rows, np.float32)


def temporal_statistics(frames: np.ndarray) -> np.ndarray:
    """float32 (S,) statistics over time of ``(T, F)`` per-frame features, S = F * (7 + NUM_DCT).

    Mean, std, min, max, 25/50/75th percentiles (blind to time order) and
    temporal DCT coefficients 1..NUM_DCT (not: a motion played backwards flips
    the sign of the odd ones), feature-major within each statistic.
    """
    stats = [frames.mean(0), frames.std(0), frames.min(0), frames.max(0), *np.percentile(frames, PERCENTILES, axis=0)]
    dct = dct_basis(len(frames)) @ frames  # (NUM_DCT, F)
    return np.concatenate([*stats, *dct]).astype(np.float32)


def sequence_statistics(seq: PoseSequence, length: int) -> np.ndarray:
    """`temporal_statistics` of `frame_features` of `seq` resampled to `length` steps."""
    return temporal_statistics(frame_features(resample_sequence(seq, length)))
