"""The synthetic demo dataset: clips, their time-reversed pairs, the folder it writes, and the command."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from snapaction.commands import demo_data as command
from snapaction.demo.clips import draw_clip, plan_clip, render_clip
from snapaction.demo.dataset import CLASSES, MARKER, DemoSpec, clip_rng, write_demo_dataset
from snapaction.errors import ConfigError, DataError
from snapaction.video import probe, read_frames

PAIRS = [("pick", "drop"), ("open", "close")]


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- rendering -----------------------------------------------------------------


@pytest.mark.parametrize("kind", CLASSES)
def test_render_clip_shape_and_dtype(kind):
    frames = render_clip(kind, rng(0), size=48, num_frames=12)
    assert frames.shape == (12, 48, 48, 3) and frames.dtype == np.uint8
    assert frames.std() > 5  # a picture, not a blank


@pytest.mark.parametrize("forward, backward", PAIRS)
@pytest.mark.parametrize("seed", range(5))
def test_reversed_class_is_the_exact_frame_reverse(forward, backward, seed):
    a = render_clip(forward, rng(seed), 64, 20)
    b = render_clip(backward, rng(seed), 64, 20)
    assert np.array_equal(b, a[::-1])
    assert not np.array_equal(a, a[::-1])  # the clip really changes over time


def test_same_seed_same_clip_other_seed_other_clip():
    assert np.array_equal(render_clip("open", rng(7)), render_clip("open", rng(7)))
    assert not np.array_equal(render_clip("open", rng(7)), render_clip("open", rng(8)))


def object_centroids(plan) -> np.ndarray:
    """(T, 2) x, y of the object, measured from pixels: the clip minus the same clip without the object."""
    plan = dataclasses.replace(plan, shadow=None)
    diff = np.abs(draw_clip(plan).astype(int) - draw_clip(plan, with_object=False)).max(-1)
    mask = diff > 40
    ys, xs = np.mgrid[0 : plan.size, 0 : plan.size]
    area = mask.sum((1, 2))
    assert (area > 5).all(), "the object should be visible in every frame"
    return np.stack([(mask * xs).sum((1, 2)) / area, (mask * ys).sum((1, 2)) / area], axis=1)


@pytest.mark.parametrize("seed", range(6))
def test_object_rises_in_pick_and_falls_in_drop(seed):
    size = 96
    pick = plan_clip("pick", rng(seed), size, 32)
    drop = plan_clip("drop", rng(seed), size, 32)
    # the planned trajectory: y (downwards) never increases in pick, never decreases in drop
    assert (np.diff(pick.centers[:, 1]) <= 1e-9).all() and (np.diff(drop.centers[:, 1]) >= -1e-9).all()
    assert pick.centers[0, 1] - pick.centers[-1, 1] >= 0.15 * size
    # and the pixels agree: measured centroid goes up by most of the planned lift
    y = object_centroids(pick)[:, 1]
    planned = pick.centers[0, 1] - pick.centers[-1, 1]
    assert y[0] - y[-1] > 0.7 * planned
    y = object_centroids(drop)[:, 1]
    assert y[-1] - y[0] > 0.7 * planned
    # horizontal drift is small next to the vertical motion (flips must not matter)
    assert abs(pick.centers[-1, 0] - pick.centers[0, 0]) < 0.5 * planned


@pytest.mark.parametrize("seed", range(6))
def test_shape_grows_in_open_and_shrinks_in_close(seed):
    opening = plan_clip("open", rng(seed), 96, 32)
    closing = plan_clip("close", rng(seed), 96, 32)
    assert (np.diff(opening.scales) >= -1e-9).all() and (np.diff(closing.scales) <= 1e-9).all()
    assert opening.scales[-1] / opening.scales[0] > 2
    area = [(np.abs(draw_clip(p).astype(int) - draw_clip(p, with_object=False)).max(-1) > 40).sum((1, 2))
            for p in (opening, closing)]
    assert area[0][-1] > 2 * area[0][0] and area[1][0] > 2 * area[1][-1]


def test_object_starts_resting_on_the_surface_in_pick():
    for seed in range(8):
        plan = dataclasses.replace(plan_clip("pick", rng(seed), 96, 32), shadow=None)
        diff = np.abs(draw_clip(plan).astype(int) - draw_clip(plan, with_object=False)).max(-1)
        lowest_row = np.nonzero((diff[0] > 40).any(1))[0].max()
        surface_y = plan_clip("pick", rng(seed), 96, 32).shadow[0, 1]  # the shadow lies on the surface line
        assert abs(lowest_row + 1 - surface_y) <= 2.5  # within antialiasing and the one-pixel camera shake
        assert np.nonzero((diff[-1] > 40).any(1))[0].max() + 1 < surface_y - 0.1 * 96  # and leaves it


@pytest.mark.parametrize("size", [32, 48, 96, 160])
def test_the_object_stays_in_the_frame_at_every_size(size):
    for seed in range(50 if size < 160 else 20):
        for kind in ("pick", "open"):
            plan = plan_clip(kind, rng(seed), size, 16)
            up, down, side = plan.sprite.extent()
            s = plan.scales.max()
            x, y = plan.centers[:, 0], plan.centers[:, 1]
            assert (y - up * s).min() >= 0 and (y + down * s).max() <= size, (kind, seed)
            assert (x - side * s).min() >= 0 and (x + side * s).max() <= size, (kind, seed)


def test_clips_vary():
    plans = [plan_clip(kind, rng(s), 64, 16) for kind in ("pick", "open") for s in range(30)]
    assert len({p.sprite.shape for p in plans}) >= 5
    assert len({round(max(p.sprite.half)) for p in plans}) >= 6
    assert np.ptp([p.sprite.color for p in plans], axis=0).min() > 0.5
    assert np.ptp([p.background.mean((0, 1)) for p in plans], axis=0).min() > 0.3
    assert {len(p.distractors) for p in plans} == {1, 2}
    assert np.ptp([np.argmax(np.abs(np.diff(p.centers[:, 1])) + np.abs(np.diff(p.scales))) for p in plans]) > 4


def test_unknown_class_is_refused_with_a_suggestion():
    with pytest.raises(ValueError, match="unknown demo class 'pik'.*Did you mean 'pick'"):
        render_clip("pik", rng(0))


# --- writing the dataset -------------------------------------------------------


SMALL = dict(clips_per_class=3, test_clips_per_class=2, size=48, num_frames=16, fps=8)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "out", **SMALL, seed=3, workers=1)


def test_layout_and_counts(small):
    assert small.classes == CLASSES
    assert small.train_dir == small.root / "train" and small.test_dir == small.root / "test"
    assert small.counts == {"train": dict.fromkeys(CLASSES, 3), "test": dict.fromkeys(CLASSES, 2)}
    for split, n in (("train", 3), ("test", 2)):
        assert sorted(p.name for p in (small.root / split).iterdir()) == sorted(CLASSES)
        for kind in CLASSES:
            files = sorted(p.name for p in (small.root / split / kind).iterdir())
            assert files == [f"{kind}_{i:03d}.mp4" for i in range(n)]
    assert sorted(p.name for p in small.root.iterdir()) == sorted([MARKER, "test", "train"])
    assert json.loads((small.root / MARKER).read_text())["complete"] is True


def test_clips_decode_to_the_asked_size_and_length(small):
    for path in small.root.rglob("*.mp4"):
        info = probe(path)
        assert (info.width, info.height, info.num_frames) == (48, 48, 16)
        assert info.fps == pytest.approx(8) and info.duration == pytest.approx(2.0)
        assert read_frames(path, np.arange(16), info=info).shape == (16, 48, 48, 3)


def test_each_file_holds_its_rendered_clip_in_order(small):
    for split, kind, index in (("train", "pick", 1), ("test", "drop", 0), ("train", "close", 2)):
        decoded = read_frames(small.root / split / kind / f"{kind}_{index:03d}.mp4", np.arange(16)).astype(int)
        raw = render_clip(kind, clip_rng(3, split, kind, index), 48, 16).astype(int)
        moving = np.abs(raw - raw[::-1]).max(-1, keepdims=True) > 60  # where order matters
        in_order = np.abs(decoded - raw)[moving.repeat(3, -1)].mean()
        reversed_ = np.abs(decoded - raw[::-1])[moving.repeat(3, -1)].mean()
        assert np.abs(decoded - raw).mean() < 12  # lossy H.264 of a noisy picture, but the same picture
        assert in_order < 0.5 * reversed_


def test_train_and_test_share_no_clip(small):
    clips = [read_frames(p, [0, 8, 15]) for p in sorted(small.root.rglob("*.mp4"))]
    for i in range(len(clips)):
        for j in range(i + 1, len(clips)):
            assert np.abs(clips[i].astype(int) - clips[j]).mean() > 3


def test_same_seed_writes_the_same_files_with_any_worker_count(small, tmp_path):
    again = write_demo_dataset(tmp_path / "again", **SMALL, seed=3, workers=2)
    for path in small.root.rglob("*.mp4"):
        assert path.read_bytes() == (again.root / path.relative_to(small.root)).read_bytes()
    other = write_demo_dataset(tmp_path / "other", **SMALL, seed=4, workers=1)
    assert (other.root / "train/pick/pick_000.mp4").read_bytes() != (small.root / "train/pick/pick_000.mp4").read_bytes()


def test_a_clip_is_encoded_to_the_same_bytes_on_every_cpu(tmp_path):
    """x264 picks kernels by CPU: its AVX-512 ones wrote other bytes run to run, its AVX2 ones other bytes than
    other CPUs. The demo's encoder settings must write, on any CPU, exactly what x264's plain C code writes."""
    import av

    from snapaction.demo.dataset import write_clip, x264_options

    for seed in range(6):
        frames = render_clip("pick", rng(seed), 48, 16)
        ours = write_clip(tmp_path / f"ours{seed}.mp4", frames, 16).read_bytes()
        assert write_clip(tmp_path / f"again{seed}.mp4", frames, 16).read_bytes() == ours
        with av.open(str(tmp_path / f"c{seed}.mp4"), "w", format="mp4") as container:  # no assembly at all
            stream = container.add_stream("libx264", rate=16, options={**x264_options(), "x264-params": "asm=0"})
            stream.width = stream.height = 48
            stream.pix_fmt = "yuv420p"
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        assert (tmp_path / f"c{seed}.mp4").read_bytes() == ours


def test_rewriting_a_previous_demo_dataset_replaces_its_clips(tmp_path):
    out = tmp_path / "demo"
    write_demo_dataset(out, **SMALL, workers=1)
    data = write_demo_dataset(out, **{**SMALL, "clips_per_class": 1, "test_clips_per_class": 1}, workers=1)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4")) == sorted(
        f"{split}/{kind}/{kind}_000.mp4" for split in ("train", "test") for kind in CLASSES
    )
    assert data.counts["train"]["pick"] == 1


def test_an_interrupted_write_can_be_written_over(tmp_path):
    out = tmp_path / "demo"
    write_demo_dataset(out, **SMALL, workers=1)
    (out / "train/pick/pick_001.mp4").rename(out / "train/pick/pick_001.mp4.part")  # as a crash would leave it
    (out / "test/open/open_001.mp4").unlink()
    write_demo_dataset(out, **SMALL, workers=1)
    assert len(list(out.rglob("*.mp4"))) == 20 and not list(out.rglob("*.part"))


def test_refuses_a_folder_with_other_files_and_touches_nothing(tmp_path):
    out = tmp_path / "mine"
    (out / "train" / "pick").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    (out / "train" / "pick" / "holiday.mp4").write_bytes(b"precious")
    with pytest.raises(DataError, match=rf"{out} is not empty and is not a SnapAction demo dataset"):
        write_demo_dataset(out, **SMALL, workers=1)
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "train" / "pick" / "holiday.mp4").read_bytes() == b"precious"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["notes.txt", "train", "train/pick", "train/pick/holiday.mp4"]


def test_refuses_a_demo_dataset_holding_user_files_and_deletes_nothing(tmp_path):
    out = tmp_path / "demo"
    write_demo_dataset(out, **SMALL, workers=1)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    (out / "train" / "pick" / "mine.mp4").write_bytes(b"precious")
    (out / "train" / "wave").mkdir()
    with pytest.raises(DataError) as err:
        write_demo_dataset(out, **SMALL, workers=1)
    assert str(out / "train" / "pick" / "mine.mp4") in str(err.value)
    assert str(out / "train" / "wave") in str(err.value)
    assert (out / "train" / "pick" / "mine.mp4").read_bytes() == b"precious"
    assert set(before) <= {p.relative_to(out) for p in out.rglob("*")}


def test_refuses_a_file_as_out(tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        write_demo_dataset(out, **SMALL)
    assert out.read_text() == "x"


def test_an_existing_empty_folder_is_fine(tmp_path):
    data = write_demo_dataset(tmp_path, **{**SMALL, "clips_per_class": 1, "test_clips_per_class": 1}, workers=1)
    assert len(list(data.root.rglob("*.mp4"))) == 8


def test_bad_options_are_all_reported(tmp_path):
    with pytest.raises(ConfigError) as err:
        write_demo_dataset(tmp_path / "x", clips_per_class=0, size=50 + 1, num_frames=3, fps=0, seed=-1)
    message = str(err.value)
    for piece in ("clips_per_class must be at least 1, got 0", "got 51", "num_frames must be at least 8 so the motion shows, got 3",
                  "fps must be at least 1, got 0", "seed must be zero or positive, got -1"):
        assert piece in message
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="workers must be at least 1, got 0"):
        write_demo_dataset(tmp_path / "x", workers=0)


def test_library_defaults_match_the_documented_spec():
    import inspect

    params = inspect.signature(write_demo_dataset).parameters
    for f in dataclasses.fields(DemoSpec):
        assert params[f.name].default == f.default
    assert (DemoSpec().num_frames / DemoSpec().fps, DemoSpec().size) == (2.0, 96)


# --- the command ---------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snapaction demo-data")
    command.add_arguments(p)
    return p


def test_help_documents_every_option_with_its_default():
    text = " ".join(parser().format_help().split())
    for flag, default in (("--clips-per-class", 40), ("--test-clips-per-class", 25), ("--size", 96),
                          ("--num-frames", 32), ("--fps", 16), ("--seed", 0)):
        assert flag in text
        assert f"(default: {default})" in text.split(flag, 2)[-1].split("--")[0]
    assert "--workers" in text and "default: one per CPU core" in text
    assert command.HELP


def test_command_writes_and_prints_where_and_how_many(tmp_path, capsys):
    out = tmp_path / "data"
    args = parser().parse_args([str(out), "--clips-per-class", "2", "--test-clips-per-class", "1",
                                "--size", "32", "--num-frames", "8", "--workers", "1"])
    assert command.run(args) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed and "12 clips" in printed
    assert "pick 2  drop 2  open 2  close 2" in printed and "pick 1  drop 1  open 1  close 1" in printed
    assert str((out / "train").resolve()) in printed and str((out / "test").resolve()) in printed
    assert probe(out / "train" / "open" / "open_001.mp4").num_frames == 8


def test_writing_the_same_demo_dataset_again_encodes_nothing(tmp_path, monkeypatch):
    import snapaction.demo.dataset as demo_dataset

    out = tmp_path / "demo"
    write_demo_dataset(out, **SMALL, workers=1)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    monkeypatch.setattr(demo_dataset, "_write_one", lambda job: pytest.fail("encoded a clip that was already there"))
    again = write_demo_dataset(out, **SMALL, workers=1)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before and again.counts["train"]["pick"] == SMALL["clips_per_class"]
    (out / "train" / "pick" / "pick_000.mp4").unlink()  # one clip gone: written again, whole
    monkeypatch.undo()
    write_demo_dataset(out, **SMALL, workers=1)
    assert len(list(out.rglob("*.mp4"))) == len(before)


def test_the_demo_end_to_end_at_a_tiny_size_then_a_rerun_replaces_only_its_own_run(tmp_path, capsys):
    """`snapaction demo` in miniature: clips, a run, the held-out report with its confusion matrix. A rerun
    replaces the demo's own run (its clips are reused: test_writing_the_same_demo_dataset_again_encodes_nothing),
    and a foreign folder where the run goes is refused, untouched."""
    from snapaction.cli import main
    from snapaction.demo.run import _check_previous_demo_run
    from snapaction.errors import ConfigError

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--clips-per-class", "4", "--test-clips-per-class", "1", "--epochs", "1"]) == 0
    said = capsys.readouterr().out
    report = json.loads((out / "run" / "eval-test" / "report.json").read_text())
    assert (out / "run" / "eval-test" / "confusion_matrix.png").is_file() and report["clips"] == 4
    assert f"held-out accuracy {report['accuracy']:.3f} on 4 clips" in said and "confusion_matrix.png" in said
    _check_previous_demo_run(out / "run", out / "data" / "train")  # the demo's own run: the new one may replace it...
    assert (out / "run" / "eval-test" / "report.json").is_file()  # ...once complete (tests/test_nothing_lost.py): untouched now
    (tmp_path / "other" / "run").mkdir(parents=True)
    (tmp_path / "other" / "run" / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not a run of this demo's clips"):
        _check_previous_demo_run(tmp_path / "other" / "run", out / "data" / "train")
    assert (tmp_path / "other" / "run" / "mine.txt").read_text() == "keep me"
