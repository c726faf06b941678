"""Long-video timelines: merging windows into segments, and a whole video of known colours end to end.

The end-to-end test does not depend on training: its Predictor's model is a
fixed torch module that calls a clip by its mean colour.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import write_video
from snapaction.predict import Predictor, Window
from snapaction.data.sampling import Sampling
from snapaction.timeline import merge_windows, window_spans, write_timeline

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def windows_of(labels, stride=1.0, width=2.0, p=0.9, classes=("a", "b")):
    out = []
    for i, label in enumerate(labels):
        rest = (1 - p) / (len(classes) - 1)
        probs = {c: (p if c == label else rest) for c in classes}
        if label is None:  # no class stands out
            probs = {c: 1 / len(classes) for c in classes}
            label = classes[0]
        out.append(Window(i * stride, i * stride + width, label, probs))
    return out


def test_spans_meet_halfway_between_window_centres():
    spans = window_spans(windows_of(["a"] * 4))  # windows [0,2] [1,3] [2,4] [3,5]: centres 1, 2, 3, 4
    assert spans == [(0.0, 1.5), (1.5, 2.5), (2.5, 3.5), (3.5, 5.0)]
    assert window_spans(windows_of(["a"] * 4), duration=5.4)[-1] == (3.5, 5.4)


def test_merge_consecutive_windows():
    segments = merge_windows(windows_of(["a", "a", "b", "b", "b"]))
    assert [(s.start, s.end, s.label, s.windows) for s in segments] == [(0.0, 2.5, "a", 2), (2.5, 6.0, "b", 3)]
    assert segments[0].confidence == pytest.approx(0.9)


def test_windows_below_threshold_break_segments():
    segments = merge_windows(windows_of(["a", None, None, "a", "b"]), threshold=0.6)
    assert [(s.start, s.end, s.label) for s in segments] == [(0.0, 1.5, "a"), (3.5, 4.5, "a"), (4.5, 6.0, "b")]
    assert merge_windows(windows_of(["a", "b"], p=0.55), threshold=0.6) == []
    with pytest.raises(ValueError, match="threshold"):
        merge_windows(windows_of(["a"]), threshold=1.5)


def test_min_seconds_and_single_window():
    segments = merge_windows(windows_of(["a", "a", "b", "a", "a"]), min_seconds=1.5)
    assert [s.label for s in segments] == ["a", "a"]
    (only,) = merge_windows([Window(0.0, 1.2, "b", {"a": 0.2, "b": 0.8})])
    assert (only.start, only.end, only.label, only.confidence) == (0.0, 1.2, "b", 0.8)
    assert merge_windows([]) == []


def test_write_timeline(tmp_path):
    windows = windows_of(["a", "a", "b"])
    segments = merge_windows(windows)
    paths = write_timeline(tmp_path / "t", windows, segments, ["a", "b"], title="clip")
    rows = paths["windows.csv"].read_text().splitlines()
    assert rows[0] == "start,end,label,a,b" and len(rows) == 4
    assert paths["segments.csv"].read_text().splitlines() == ["start,end,label,confidence", "0.000,2.500,a,0.9000", "2.500,4.000,b,0.9000"]
    data = json.loads(paths["timeline.json"].read_text())
    assert data["classes"] == ["a", "b"] and len(data["windows"]) == 3 and data["segments"][1]["label"] == "b"
    assert paths["timeline.png"].read_bytes()[:4] == b"\x89PNG"


# --- a whole video, end to end ---------------------------------------------------


class MeanColour(torch.nn.Module):
    """Logits = 10 x each channel's mean: a clip is called by its dominant colour; black gets no class."""

    def forward(self, pixel_values):  # (B, T, C, H, W)
        return SimpleNamespace(logits=10 * pixel_values.mean(dim=(1, 3, 4)))  # (B, 3)


class PlainPixels:
    """Preprocessing that only scales uint8 (T, H, W, C) to float (T, C, H, W) in [0, 1]."""

    size = 16
    crop = (16, 16)
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __call__(self, frames):
        return torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2).float() / 255


def colour_predictor() -> Predictor:
    return Predictor(MeanColour(), list(COLOURS), Sampling(num_frames=4), PlainPixels(), "mean-colour", device="cpu")


FPS = 10
# (colour, seconds): the test knows where each part starts
PARTS = [("red", 3.0), (None, 2.0), ("green", 2.0), ("blue", 3.0)]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    frames = []
    for colour, seconds in PARTS:
        part = np.zeros((int(seconds * FPS), 16, 16, 3), np.uint8)
        if colour:
            part[:] = COLOURS[colour]
        frames.append(part)
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", np.concatenate(frames), fps=FPS)


def test_timeline_segments_match_the_known_parts(long_video):
    stride = 0.5
    windows = colour_predictor().timeline(long_video, stride_s=stride, window_s=1.0)
    assert len(windows) == 19  # starts 0, 0.5, ..., 9.0
    assert [w.start for w in windows] == pytest.approx(np.arange(19) * 0.5)
    segments = merge_windows(windows, threshold=0.5, duration=10.0)
    assert [s.label for s in segments] == ["red", "green", "blue"]
    expected = [(0.0, 3.0), (5.0, 7.0), (7.0, 10.0)]
    tolerance = stride / 2 + 1 / FPS  # a boundary falls between two window centres
    for s, (start, end) in zip(segments, expected):
        assert s.start == pytest.approx(start, abs=tolerance)
        assert s.end == pytest.approx(end, abs=tolerance)
        assert s.confidence > 0.9
    for w in windows:  # windows wholly inside the black part belong to no class
        if 3.0 <= w.start and w.end <= 5.0:
            assert max(w.probabilities.values()) == pytest.approx(1 / 3)


def test_timeline_reads_only_one_window_at_a_time(long_video, monkeypatch):
    """Memory stays flat: each read decodes one window's frames, each forward pass a bounded batch."""
    import snapaction.video as video

    reads, batches = [], []
    real_read = video.read_frames

    def counting_read(path, indices, *args, **kwargs):
        reads.append(len(indices))
        return real_read(path, indices, *args, **kwargs)

    predictor = colour_predictor()
    real_probs = predictor.probabilities
    monkeypatch.setattr(video, "read_frames", counting_read)
    monkeypatch.setattr(predictor, "probabilities", lambda x: batches.append(len(x)) or real_probs(x))
    windows = predictor.timeline(long_video, stride_s=0.25, window_s=1.0, batch=4)
    assert len(windows) == 37
    assert max(reads) <= 4 and len(reads) == 37
    assert max(batches) <= 4


def test_the_last_window_reaches_the_end_of_the_video(long_video):
    windows = colour_predictor().timeline(long_video, stride_s=0.7, window_s=1.0)
    starts = [w.start for w in windows]
    assert starts[:-1] == pytest.approx(np.arange(13) * 0.7)  # 0 .. 8.4 by the stride
    assert starts[-1] == pytest.approx(9.0) and windows[-1].end == pytest.approx(10.0)  # then one flush with the end
    assert windows[-1].label == "blue"
