"""The 33-point skeleton of MediaPipe Pose: joint names, left/right pairs, bones.

Kept here as plain tables (not read from mediapipe) so features, augmentation,
previews and the web overlay work without mediapipe installed; a test checks
they equal mediapipe's own ``PoseLandmark`` and ``POSE_CONNECTIONS``.
"Left" is the person's left, as in MediaPipe.
"""

from __future__ import annotations

import numpy as np

NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)
NUM_JOINTS = len(NAMES)
J = {name: i for i, name in enumerate(NAMES)}
"""Joint index by name."""

LEFT_RIGHT_PAIRS = tuple(
    (i, J["right_" + name[5:]]) for i, name in enumerate(NAMES) if name.startswith("left_")
) + ((J["mouth_left"], J["mouth_right"]),)

MIRROR = np.arange(NUM_JOINTS)
for _left, _right in LEFT_RIGHT_PAIRS:
    MIRROR[_left], MIRROR[_right] = _right, _left
MIRROR.setflags(write=False)
"""``points[..., MIRROR, :]`` swaps every left joint with its right twin (an involution)."""

CONNECTIONS = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
    (11, 13), (11, 23), (12, 14), (12, 24), (13, 15), (14, 16), (15, 17), (15, 19), (15, 21),
    (16, 18), (16, 20), (16, 22), (17, 19), (18, 20), (23, 24), (23, 25), (24, 26), (25, 27),
    (26, 28), (27, 29), (27, 31), (28, 30), (28, 32), (29, 31), (30, 32),
)
"""Bones as (joint, joint) pairs, the same set as ``mediapipe.solutions.pose.POSE_CONNECTIONS``."""

FEATURE_JOINTS = tuple(J[n] for n in (
    "nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_index", "right_index", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
))
"""The joints whose positions become features: the body, without the face and foot details
that duplicate a neighbour. Closed under `MIRROR`, so mirroring keeps the feature set."""

ANGLES = (
    # (name, a, b, c): the angle at b between the bones b->a and b->c
    ("left_elbow", J["left_shoulder"], J["left_elbow"], J["left_wrist"]),
    ("right_elbow", J["right_shoulder"], J["right_elbow"], J["right_wrist"]),
    ("left_shoulder", J["left_elbow"], J["left_shoulder"], J["left_hip"]),
    ("right_shoulder", J["right_elbow"], J["right_shoulder"], J["right_hip"]),
    ("left_hip", J["left_shoulder"], J["left_hip"], J["left_knee"]),
    ("right_hip", J["right_shoulder"], J["right_hip"], J["right_knee"]),
    ("left_knee", J["left_hip"], J["left_knee"], J["left_ankle"]),
    ("right_knee", J["right_hip"], J["right_knee"], J["right_ankle"]),
)
"""Joint angles used as features; left/right alternate so a mirror swaps neighbours."""
