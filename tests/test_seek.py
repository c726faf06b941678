"""--seek fast: the keyframe nearest each wanted frame when they lie further apart than the keyframes, else exact frames."""

from __future__ import annotations

import numpy as np

from conftest import write_video
from snapaction.cli import main
from snapaction.data.sampling import uniform_indices
from snapaction.predict import Predictor
from snapaction.video import read_frames, read_frames_fast
from snapaction.video.seek import keyframe_picks

GOP = 25


def numbered_clip(path, n: int = 400):
    """Lossless frames whose red and green values spell the frame number; a keyframe every GOP frames."""
    frames = np.zeros((n, 32, 48, 3), np.uint8)
    frames[..., 0] = (np.arange(n) % 256)[:, None, None]
    frames[..., 1] = (np.arange(n) // 256 * 64)[:, None, None]
    return write_video(path, frames, g=str(GOP), keyint_min=str(GOP), sc_threshold="0")


def number(frames: np.ndarray) -> np.ndarray:
    return frames[:, 16, 24, 0].astype(int) + frames[:, 16, 24, 1].astype(int) // 64 * 256


def test_sparse_frames_come_from_the_nearest_keyframes_and_dense_ones_are_exact(tmp_path):
    clip = numbered_clip(tmp_path / "long.mp4")
    sparse = uniform_indices(400, 6)  # 66 frames apart, keyframes 25 apart
    got = number(read_frames_fast(clip, sparse))
    nearest = np.round(sparse / GOP).astype(int) * GOP
    assert np.array_equal(got, nearest), (sparse, got)
    assert np.abs(got - sparse).max() <= GOP // 2
    assert np.array_equal(number(read_frames(clip, sparse)), sparse)  # the exact reader, for contrast
    dense = uniform_indices(400, 32)  # 12 apart: two would share a keyframe, so the exact frames come back
    assert np.array_equal(read_frames_fast(clip, dense), read_frames(clip, dense))
    assert keyframe_picks([0], [0.0, 5.0], 1.0) is None  # no index to seek by


def test_predict_seek_fast_on_a_short_clip_equals_exact(tiny_run, capsys):
    clip = sorted((tiny_run.parent / "data" / "test").rglob("*.mp4"))[0]
    exact = Predictor.load(tiny_run).predict(clip).probabilities
    fast = Predictor.load(tiny_run, seek="fast").predict(clip).probabilities
    assert fast == exact  # a 12-frame clip has one keyframe: nothing to seek between
    assert main(["predict", str(tiny_run), str(clip), "--seek", "fast", "--top", "1"]) == 0
    assert clip.stem in capsys.readouterr().out
