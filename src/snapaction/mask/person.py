"""Person masks: MediaPipe's selfie segmentation, whose model ships inside the mediapipe==0.10.21 wheel.

The general model (``model_selection=0``, 256x256 input) is used: it also
segments people who fill only part of the frame, where the landscape model
is tuned for a face near the camera. Frames are segmented independently, so
a frame's mask depends on that frame alone (caching and tests are exact). The
graph is made once per process and used under a lock.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

THRESHOLD = 0.5
"""Per-pixel person probability above which a pixel is foreground."""

_graph = None
_lock = threading.Lock()


def _segmenter():
    global _graph
    if _graph is None:
        from ..pose.landmarks import require_mediapipe

        mp = require_mediapipe()
        _graph = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    return _graph


def person_probabilities(frames: np.ndarray) -> np.ndarray:
    """float32 (T, H, W) probability that each pixel shows a person, for uint8 (T, H, W, 3) RGB frames."""
    out = np.zeros(frames.shape[:3], np.float32)
    with _lock, _denormals_kept():
        graph = _segmenter()
        for i, frame in enumerate(frames):
            result = graph.process(np.ascontiguousarray(frame))
            if result.segmentation_mask is not None:
                out[i] = result.segmentation_mask
    return out


@contextlib.contextmanager
def _denormals_kept():
    """Training flushes denormal floats to zero (`torch.set_flush_denormal`), which makes MediaPipe's XNNPack
    delegate fail to start ("failed to prepare"); keep them while MediaPipe runs, then restore the setting."""
    import sys

    torch = sys.modules.get("torch")
    flushed = torch is not None and (torch.tensor([1e-39]) * 1.0).item() == 0.0
    if flushed:
        torch.set_flush_denormal(False)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(True)


def person_masks(frames: np.ndarray) -> np.ndarray:
    """bool (T, H, W): the pixels MediaPipe's selfie segmentation takes for a person."""
    return person_probabilities(np.asarray(frames)) > THRESHOLD
