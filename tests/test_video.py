"""Decoding: exact frames from lossless clips the tests write, seeking, rotation, variable frame rate, broken files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import write_video
from corpus import encode
from snapaction.video import pyav as decode
from snapaction.errors import ClipError
from snapaction.data.sampling import uniform_indices
from snapaction.video import SEEK_GAP_S, probe, read_frames, scaled_size


def moving_frames(t: int, h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3): a random texture sliding right and down, so the encoder predicts between frames."""
    tex = np.random.default_rng(seed).integers(0, 256, (h + t, w + 2 * t, 3), dtype=np.uint8)
    return np.stack([tex[i : i + h, 2 * i : 2 * i + w] for i in range(t)])


def smooth_frames(t: int, h: int = 64, w: int = 96) -> np.ndarray:
    """uint8 (T, H, W, 3) of slowly moving waves: H.264 codes these with B-frames."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack(
        [
            np.stack([128 + 100 * np.sin(xx / 7 + i / 5), 128 + 100 * np.cos(yy / 9 - i / 7), 128 + 100 * np.sin((xx + yy) / 11 + i / 3)], -1)
            for i in range(t)
        ]
    ).astype(np.uint8)


def write_rgb(path: Path, frames: np.ndarray, pts_ms: list[int] | None = None, rotation: int = 0, fps: int = 25) -> Path:
    """Lossless clip with optional per-frame timestamps (milliseconds) and display rotation."""
    return encode(path, frames, codec="libx264rgb", pix_fmt="rgb24", fps=fps, pts_ms=pts_ms, rotation=rotation, qp="0")


def decode_all(path: Path) -> np.ndarray:
    """Every frame, decoded in order from the start: the ground truth for lossy clips."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def seeks_during(monkeypatch) -> list:
    """Records every seek the decoder decides on."""
    seen = []
    original = decode._Decoder._seek_point

    def spy(self, *args):
        point = original(self, *args)
        if point is not None:
            seen.append(point)
        return point

    monkeypatch.setattr(decode._Decoder, "_seek_point", spy)
    return seen


@pytest.fixture(scope="module")
def lossless(tmp_path_factory):
    frames = moving_frames(40)
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames), frames


@pytest.fixture(scope="module")
def long_lossless(tmp_path_factory):
    """6 s at 25 fps, a keyframe every 5 frames: far targets go through the seek path."""
    frames = moving_frames(150)
    path = write_video(tmp_path_factory.mktemp("v") / "long.mp4", frames, g="5")
    return path, frames


@pytest.fixture(scope="module")
def bframes_clip(tmp_path_factory):
    """Lossy H.264 with B-frames (some not used as references) and a keyframe every 12 frames."""
    path = write_video(tmp_path_factory.mktemp("v") / "b.mp4", smooth_frames(200), codec="libx264", g="12")
    with av.open(str(path)) as container:
        types = {str(f.pict_type) for f in container.decode(video=0)}
    assert any("B" in t or t == "3" for t in types), f"the test clip should hold B-frames, got {types}"
    return path, decode_all(path)


def test_probe_reads_count_rate_and_size(lossless):
    path, frames = lossless
    info = probe(path)
    assert (info.num_frames, info.fps, info.width, info.height, info.rotation) == (40, 25.0, 48, 32, 0)
    assert info.duration == pytest.approx(40 / 25)


@pytest.mark.parametrize("indices", [[0], [39], [3, 17, 30], [5, 5, 5, 0, 0], [30, 2, 17, 2, 39, 0], list(range(40))])
def test_frames_are_exact_for_any_indices(lossless, indices):
    path, frames = lossless
    np.testing.assert_array_equal(read_frames(path, indices), frames[indices])


def test_frames_are_exact_through_the_seek_path(long_lossless, monkeypatch):
    path, frames = long_lossless
    seeks = seeks_during(monkeypatch)
    indices = [149, 3, 120, 60, 61, 3, 148, 90]  # gaps longer than SEEK_GAP_S between them
    assert (149 - 90) / 25 > SEEK_GAP_S
    np.testing.assert_array_equal(read_frames(path, indices), frames[indices])
    assert len(seeks) >= 4, "far frames should be reached by seeking"


def test_frames_are_exact_without_a_keyframe_index(long_lossless, monkeypatch):
    """Containers without an index seek by time when the next frame is more than SEEK_GAP_S ahead."""
    path, frames = long_lossless
    monkeypatch.setattr(decode, "_keyframe_timestamps", lambda stream: [])
    seeks = seeks_during(monkeypatch)
    indices = [0, 1, 140, 70, 71, 149]
    np.testing.assert_array_equal(read_frames(path, indices), frames[indices])
    assert len(seeks) >= 3


def test_skipping_and_seeking_match_a_full_decode_with_bframes(bframes_clip):
    path, truth = bframes_clip
    rng = np.random.default_rng(0)
    for _ in range(10):
        indices = rng.integers(0, len(truth), 8)
        np.testing.assert_array_equal(read_frames(path, indices), truth[indices])
    indices = uniform_indices(len(truth), 16)
    np.testing.assert_array_equal(read_frames(path, indices), truth[indices])


@pytest.mark.parametrize("slices", [1, 4])
def test_frames_coded_as_several_slices_decode_exactly_with_slice_threads(tmp_path, slices):
    frames = smooth_frames(60, h=128, w=192)
    path = tmp_path / f"s{slices}.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "12", "x264-params": f"slices={slices}"})
        stream.width, stream.height, stream.pix_fmt = 192, 128, "yuv420p"
        stream.thread_type = "FRAME"  # so that x264 writes exactly `slices` slices
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    container = decode._open(path, 10)
    assert str(container.streams.video[0].thread_type).endswith("SLICE" if slices > 1 else "AUTO")
    container.close()
    truth = decode_all(path)
    indices = [59, 0, 30, 31, 7, 45]
    np.testing.assert_array_equal(read_frames(path, indices), truth[indices])


def test_matroska_without_a_frame_count_is_counted_and_read_exactly(tmp_path):
    frames = moving_frames(120)
    path = write_video(tmp_path / "clip.mkv", frames, g="10")
    info = probe(path)
    assert (info.num_frames, info.fps) == (120, 25.0)
    indices = [119, 0, 64, 3, 100]
    np.testing.assert_array_equal(read_frames(path, indices), frames[indices])


def test_short_side_is_scaled_while_decoding(long_lossless):
    path, frames = long_lossless
    out = read_frames(path, [0, 75], size=24)
    assert out.shape == (2, 24, 36, 3) and out.dtype == np.uint8
    pil = np.stack([np.asarray(Image.fromarray(f).resize((36, 24), Image.BILINEAR)) for f in frames[[0, 75]]])
    assert np.abs(out.astype(int) - pil).mean() < 4  # swscale's bilinear, close to Pillow's


def test_scaled_size_rounds_the_long_side_down_as_transformers_does():
    assert scaled_size(1280, 720, 224) == (398, 224)
    assert scaled_size(720, 1280, 224) == (224, 398)
    assert scaled_size(641, 480, 100) == (133, 100)  # 133.54 -> 133
    assert scaled_size(64, 48, None) == (64, 48)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    frames = moving_frames(6, h=24, w=32)
    path = write_rgb(tmp_path / "r.mp4", frames, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((24, 32) if rotation in (90, 270) else (32, 24))
    # the display matrix turns stored frames counter-clockwise, as np.rot90 does
    expected = np.rot90(frames[[1, 4]], k=rotation // 90, axes=(1, 2))
    np.testing.assert_array_equal(read_frames(path, [1, 4]), expected)
    assert read_frames(path, [2], size=12).shape[1:3] == ((16, 12) if rotation in (90, 270) else (12, 16))


def test_variable_frame_rate_is_sampled_by_time(tmp_path):
    # slow, then a burst of fast frames, then a long still gap, then fast again
    pts = [0, 100, 200, 300, 320, 340, 360, 380, 400, 700, 710, 720]
    frames = moving_frames(len(pts), h=24, w=32)
    path = write_rgb(tmp_path / "vfr.mp4", frames, pts_ms=pts, fps=50)
    info = probe(path)
    assert info.num_frames == 12 and info.duration == pytest.approx(0.74, abs=0.011)
    indices = np.arange(info.num_frames)
    out = read_frames(path, indices[::-1])[::-1]
    times = np.asarray(pts) / 1000
    for i in indices:  # frame i is the one on screen at i / fps: the last stamped at or before it
        shown = np.searchsorted(times, i / info.fps + 1e-9, side="right") - 1
        np.testing.assert_array_equal(out[i], frames[shown], err_msg=f"index {i}")
    # sampling by time repeats the frame held through the gap and drops some of the burst
    picked = [int(np.flatnonzero((frames == f).all(axis=(1, 2, 3)))[0]) for f in out]
    assert picked.count(8) >= 3 and len(set(picked)) < len(pts)


def test_out_of_range_index_is_a_value_error(lossless):
    path, _ = lossless
    with pytest.raises(ValueError, match="out of range"):
        read_frames(path, [0, 40])
    with pytest.raises(ValueError, match="out of range"):
        read_frames(path, [-1])


def test_frame_folders_read_in_natural_order(tmp_path):
    frames = moving_frames(12, h=16, w=20)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"img{i}.png")
    assert probe(tmp_path).num_frames == 12
    np.testing.assert_array_equal(read_frames(tmp_path, [11, 2, 10]), frames[[11, 2, 10]])


# --- broken and hostile files --------------------------------------------------


def broken_files(folder: Path, good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    files = {
        "empty": b"",
        "text": b"this is not a video, only text saved as .mp4\n" * 20,
        "truncated": data[: len(data) // 2],
        "random": np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
    }
    out = {}
    for name, content in files.items():
        out[name] = folder / f"{name}.mp4"
        out[name].write_bytes(content)
    return out


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "random"])
def test_broken_files_raise_clip_error_naming_the_file(tmp_path, lossless, kind):
    path = broken_files(tmp_path, lossless[0])[kind]
    with pytest.raises(ClipError) as err:
        probe(path)
    assert str(path) in str(err.value) and err.value.path == path
    with pytest.raises(ClipError, match=str(path)):
        read_frames(path, [0])


def test_truncated_file_with_index_up_front_raises_clip_error(tmp_path):
    """With the index at the start (faststart) the file opens; the missing tail is still reported."""
    frames = moving_frames(100)
    good = tmp_path / "fast.mp4"
    with av.open(str(good), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264rgb", rate=25, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = 48, 32, "rgb24"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 5])
    assert probe(cut).num_frames == 100  # the index still promises every frame
    np.testing.assert_array_equal(read_frames(cut, [0, 5]), frames[[0, 5]])
    with pytest.raises(ClipError, match="truncated"):
        read_frames(cut, [0, 99])


def test_missing_file_and_pipe_raise_clip_error(tmp_path):
    with pytest.raises(ClipError, match="no such file"):
        probe(tmp_path / "nothere.mp4")
    if hasattr(os, "mkfifo"):  # reading a pipe with no writer would block forever
        fifo = tmp_path / "pipe.mp4"
        os.mkfifo(fifo)
        with pytest.raises(ClipError, match="not a regular file"):
            read_frames(fifo, [0])


def test_decoding_time_is_bounded(long_lossless):
    path, _ = long_lossless
    with pytest.raises(ClipError, match="longer than") as err:
        read_frames(path, [0, 149], timeout=0)
    assert err.value.path == path
    with pytest.raises(ClipError, match="longer than"):
        probe(path, timeout=0)


def test_the_data_checks_full_decode_counts_every_frame_and_is_bounded_in_time(long_lossless):
    from snapaction.video import decode_all

    path, frames = long_lossless
    assert decode_all(path) == len(frames)
    with pytest.raises(ClipError, match="longer than") as err:
        decode_all(path, probe(path), timeout=0)
    assert err.value.path == path


def test_a_batch_reports_bad_clips_and_goes_on(tmp_path, lossless):
    good, frames = lossless
    clips = [good, *broken_files(tmp_path, good).values(), good]
    done, failed = [], []
    for clip in clips:
        try:
            done.append(read_frames(clip, [1, 2]))
        except ClipError as err:
            failed.append(err.path)
    assert len(done) == 2 and len(failed) == 4
    np.testing.assert_array_equal(done[1], frames[[1, 2]])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_bytes_give_frames_or_clip_error(tmp_path_factory, bframes_clip, data):
    """Flip bytes anywhere in a valid clip: the reader returns frames of the right shape or raises ClipError, promptly."""
    path, truth = bframes_clip
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 20))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    bad = tmp_path_factory.mktemp("fuzz") / "clip.mp4"
    bad.write_bytes(bytes(raw))
    started = time.monotonic()
    try:
        out = read_frames(bad, [0, 50, 199], timeout=10)
    except ClipError as err:
        assert err.path == bad
    except ValueError as err:  # the damaged index may promise fewer frames
        assert "out of range" in str(err)
    else:
        assert out.shape == (3, *truth.shape[1:])
    assert time.monotonic() - started < 15
