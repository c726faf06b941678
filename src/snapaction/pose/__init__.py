"""The pose model (``--backbone pose``): MediaPipe Pose and Hands landmarks over time and a small temporal classifier.

Every clip that decodes is classified: frames with no body (hands only, or nobody
in view) are features, and predictions say what was seen.

Stages, one module each: `landmarks` (clip -> `Landmarks`, cached per clip),
`features` (-> normalised `PoseSequence` -> per-frame features and temporal
statistics), `augment`, `classifier` (two kinds, one interface), `training`
(both trained, the better kept), `pipeline` (labelled clip paths in, trained
model + report + skipped clips out; clip path -> probabilities), `preview`.
Needs the optional dependency mediapipe only to extract landmarks:
``pip install "snapaction[pose]"``.
"""

from .classifier import PoseClassifier, StatsClassifier, TemporalClassifier, load_classifier
from .features import PoseSequence, pose_sequence
from .landmarks import LandmarkCache, Landmarks, extract_landmarks
from .pipeline import PoseFit, PosePipeline, fit_pose
from .preview import skeleton_json, write_preview
from .settings import PoseSettings
from .training import PoseReport, train_pose_classifier

__all__ = [
    "LandmarkCache", "Landmarks", "PoseClassifier", "PoseFit", "PosePipeline", "PoseReport", "PoseSequence",
    "PoseSettings", "StatsClassifier", "TemporalClassifier", "extract_landmarks", "fit_pose", "load_classifier",
    "pose_sequence", "skeleton_json", "train_pose_classifier", "write_preview",
]
