"""Dataset layouts, the grouped split, and ClipDataset with and without the cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import write_video
from snapaction.data.cache import ClipCache
from snapaction.data.dataset import ClipDataset, collate_clips
from snapaction.data.layout import Sample, scan
from snapaction.data.splits import split
from snapaction.errors import DataError
from snapaction.data.layout import group_of
from snapaction.data.sampling import Sampling, sample_indices, uniform_indices


def frames_of(seed: int, t: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, 32, 32, 3), dtype=np.uint8)


def write_frames(folder: Path, frames: np.ndarray, names=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / (names[i] if names else f"img_{i + 1}.png"))
    return folder


def reasons(clipset) -> dict[str, str]:
    return {p.relative_to(clipset.root).as_posix(): r for p, r in clipset.skipped}


# --- layouts -----------------------------------------------------------------


def test_video_folders_by_class(tmp_path):
    for label in ("wave", "drop"):
        for i in range(2):
            write_video(tmp_path / label / f"v_{label}_g0{i}_c01.mp4", frames_of(i, t=4))
    write_video(tmp_path / "drop" / "extra.MKV", frames_of(9, t=4))
    (tmp_path / "drop" / "notes.txt").write_text("not a clip")
    (tmp_path / "stray.mp4").write_bytes(b"")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    (tmp_path / "empty_class").mkdir()

    clips = scan(tmp_path)
    assert clips.layout == "videos"
    assert clips.classes == ["drop", "wave"]  # sorted: ids are stable
    assert [(s.path.name, s.label, s.group) for s in clips.samples] == [
        ("extra.MKV", "drop", "drop/extra.MKV"),
        ("v_drop_g00_c01.mp4", "drop", "v_drop_g00"),
        ("v_drop_g01_c01.mp4", "drop", "v_drop_g01"),
        ("v_wave_g00_c01.mp4", "wave", "v_wave_g00"),
        ("v_wave_g01_c01.mp4", "wave", "v_wave_g01"),
    ]
    skipped = reasons(clips)
    assert set(skipped) == {"drop/notes.txt", "stray.mp4", ".DS_Store", "empty_class"}
    assert "not a video file" in skipped["drop/notes.txt"] and ".txt" in skipped["drop/notes.txt"]
    assert "not inside a class folder" in skipped["stray.mp4"]
    assert "hidden" in skipped[".DS_Store"]
    assert "no clips" in skipped["empty_class"]


def test_frame_folders_by_class(tmp_path):
    write_frames(tmp_path / "pick" / "v_pick_g01_c01", frames_of(0, t=3))
    write_frames(tmp_path / "pick" / "v_pick_g01_c02", frames_of(1, t=3))
    write_frames(tmp_path / "put" / "clip7", frames_of(2, t=3))
    (tmp_path / "put" / "empty_video").mkdir()
    Image.fromarray(frames_of(3)[0]).save(tmp_path / "put" / "lonely.jpg")

    clips = scan(tmp_path)
    assert clips.layout == "frames"
    assert clips.classes == ["pick", "put"]
    assert [(s.path.name, s.label, s.group) for s in clips.samples] == [
        ("v_pick_g01_c01", "pick", "v_pick_g01"),  # two cuts of one source video share a group
        ("v_pick_g01_c02", "pick", "v_pick_g01"),
        ("clip7", "put", "put/clip7"),
    ]
    skipped = reasons(clips)
    assert "without image frames" in skipped["put/empty_video"]
    assert "single image" in skipped["put/lonely.jpg"]


def test_frames_are_read_in_natural_order(tmp_path):
    frames = frames_of(0, t=11)
    names = [f"frame{i}.png" for i in range(11)]  # frame10 comes after frame9, not after frame1
    write_frames(tmp_path / "a" / "v1", frames, names)
    write_frames(tmp_path / "b" / "v1", frames[:2])
    clips = scan(tmp_path)
    ds = ClipDataset(clips.samples, clips.classes, Sampling(num_frames=11), size=None, train=False)
    got, label = ds[0]
    assert label == 0
    np.testing.assert_array_equal(got.numpy(), frames)


def test_unlabeled_frame_folders_and_videos(tmp_path):
    write_frames(tmp_path / "1001", frames_of(0, t=2))
    write_frames(tmp_path / "1002", frames_of(1, t=2))
    clips = scan(tmp_path)
    assert clips.layout == "unlabeled"
    assert clips.classes == []
    assert [(s.path.name, s.label, s.group) for s in clips.samples] == [("1001", None, "1001"), ("1002", None, "1002")]

    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", frames_of(0, t=3))
    (videos / "readme.md").write_text("x")
    clips = scan(videos)
    assert clips.layout == "unlabeled"
    assert [s.path.name for s in clips.samples] == ["a.mp4"]
    assert [p.name for p, _ in clips.skipped] == ["readme.md"]


def test_manifest_with_header_and_groups(tmp_path):
    write_video(tmp_path / "clips" / "a.mp4", frames_of(0, t=3))
    write_video(tmp_path / "clips" / "b.mp4", frames_of(1, t=3))
    write_video(tmp_path / "clips" / "v_X_g02_c03.mp4", frames_of(2, t=3))
    write_frames(tmp_path / "clips" / "frames1", frames_of(3, t=2))
    (tmp_path / "clips" / "c.txt").write_text("x")
    manifest = tmp_path / "lists" / "train.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "label,path,group,notes\n"
        "jump,../clips/a.mp4,take1,first\n"
        "sit,../clips/b.mp4,take1,\n"
        "\n"
        "# a comment line\n"
        "jump,../clips/v_X_g02_c03.mp4,,\n"
        "sit,../clips/frames1,,\n"
        "sit,../clips/missing.mp4,,\n"
        ",../clips/a.mp4,,\n"
        "jump,../clips/a.mp4,,\n"
        "jump,../clips/c.txt,,\n"
    )
    clips = scan(manifest)
    assert clips.layout == "manifest"
    assert clips.classes == ["jump", "sit"]
    assert [(s.path.name, s.label, s.group) for s in clips.samples] == [
        ("a.mp4", "jump", "take1"),
        ("b.mp4", "sit", "take1"),
        ("v_X_g02_c03.mp4", "jump", "v_X_g02"),
        ("frames1", "sit", "../clips/frames1"),
    ]
    got = " | ".join(r for _, r in clips.skipped)
    assert "line 8 of train.csv but does not exist" in got
    assert "line 9 of train.csv has no label" in got
    assert "line 10 of train.csv lists this clip a second time" in got
    assert "line 11 of train.csv but not a video file" in got
    assert [p.name for p, _ in clips.skipped] == ["missing.mp4", "a.mp4", "a.mp4", "c.txt"]


def test_manifest_without_header(tmp_path):
    write_video(tmp_path / "a.mp4", frames_of(0, t=3))
    write_video(tmp_path / "b.mp4", frames_of(1, t=3))
    (tmp_path / "m.csv").write_text("a.mp4,left\nb.mp4,right,g1\n\"a,b.mp4\",left,g,extra\n")
    clips = scan(tmp_path / "m.csv")
    assert [(s.path.name, s.label, s.group) for s in clips.samples] == [("a.mp4", "left", "a.mp4"), ("b.mp4", "right", "g1")]
    assert "4 columns" in clips.skipped[0][1]

    (tmp_path / "test.csv").write_text(str(tmp_path / "b.mp4") + "\n")  # absolute path, no label column
    clips = scan(tmp_path / "test.csv")
    assert [(s.path.name, s.label) for s in clips.samples] == [("b.mp4", None)]
    assert clips.classes == []


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda root: None, "is empty"),
        (lambda root: (root / "x.txt").write_text("x"), "holds no clips"),
        (lambda root: (root / "a").mkdir() or (root / "a" / "b.doc").write_text("x"), "holds no clips"),
        (lambda root: Image.fromarray(frames_of(0)[0]).save(root / "0001.jpg"), "frames of one clip"),
    ],
)
def test_unusable_roots_raise_one_sentence(tmp_path, make, words):
    make(tmp_path)
    with pytest.raises(DataError, match=words) as err:
        scan(tmp_path)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


def test_missing_root_and_wrong_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan(tmp_path / "nope")
    (tmp_path / "list.txt").write_text("a.mp4,x\n")
    with pytest.raises(DataError, match="not a .csv manifest"):
        scan(tmp_path / "list.txt")
    (tmp_path / "m.csv").write_text("path,label\nmissing.mp4,x\n")
    with pytest.raises(DataError, match="lists no usable clips.*missing.mp4"):
        scan(tmp_path / "m.csv")


def test_group_names():
    assert group_of(Path("v_ApplyLipstick_g08_c03.avi"), "x") == "v_ApplyLipstick_g08"
    assert group_of(Path("v_ApplyLipstick_g08_c03"), "x") == "v_ApplyLipstick_g08"  # frame folder
    assert group_of(Path("clip_g1.mp4"), "cls/clip_g1.mp4") == "cls/clip_g1.mp4"


# --- split -------------------------------------------------------------------


def sample_sets(multi_class_groups: bool):
    """Lists of samples: (label index, group index) pairs, groups single-class unless asked."""
    pair = st.tuples(st.integers(0, 3), st.integers(0, 12))
    return st.lists(pair, min_size=1, max_size=60).map(
        lambda pairs: [
            Sample(Path(f"clip{i}.mp4"), f"c{c}", f"g{g}" if multi_class_groups else f"c{c}-g{g}")
            for i, (c, g) in enumerate(pairs)
        ]
    )


def by_class(samples):
    out: dict[str, set[str]] = {}
    for s in samples:
        out.setdefault(s.label, set()).add(s.group)
    return out


@settings(max_examples=200, deadline=None)
@given(sample_sets(multi_class_groups=False), st.floats(0.01, 0.9), st.integers(0, 2**32 - 1))
def test_split_is_grouped_stratified_and_seeded(samples, fraction, seed):
    train, val = split(samples, fraction, seed)
    assert sorted(map(str, train + val)) == sorted(map(str, samples))  # a partition
    assert {s.group for s in train}.isdisjoint({s.group for s in val})  # no group leaks
    assert (train, val) == split(samples, fraction, seed)  # seeded
    train_groups, val_groups = by_class(train), by_class(val)
    for label, groups in by_class(samples).items():
        assert train_groups.get(label), f"class {label} lost all its training clips"
        if len(groups) >= 2:
            assert val_groups.get(label), f"class {label} with {len(groups)} groups got no validation clip"
    assert [s for s in samples if s in set(train)] == train  # input order kept


@settings(max_examples=200, deadline=None)
@given(sample_sets(multi_class_groups=True), st.floats(0.01, 0.9), st.integers(0, 1000))
def test_split_never_leaks_groups_that_mix_classes(samples, fraction, seed):
    train, val = split(samples, fraction, seed)
    assert len(train) + len(val) == len(samples)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert set(by_class(train)) == set(by_class(samples))  # every class keeps training clips


def test_split_fraction_per_class_and_seed_matters():
    samples = [Sample(Path(f"{c}{i}.mp4"), c, f"{c}{i}") for c in ("a", "b") for i in range(10)]
    train, val = split(samples, 0.2, seed=0)
    assert sorted(s.label for s in val) == ["a", "a", "b", "b"]
    others = {tuple(s.path.name for s in split(samples, 0.2, seed=k)[1]) for k in range(10)}
    assert len(others) > 1
    assert split(samples, 0.0) == (samples, [])
    with pytest.raises(ValueError, match="val_fraction"):
        split(samples, 1.0)


# --- ClipDataset ---------------------------------------------------------------


@pytest.fixture
def two_classes(tmp_path):
    clips = {}
    for k, label in enumerate(("left", "right")):
        frames = frames_of(k, t=16)
        clips[label] = frames
        write_video(tmp_path / "data" / label / f"{label}.mp4", frames)
    return scan(tmp_path / "data"), clips


def test_dataset_returns_exact_frames_and_labels(two_classes):
    clipset, clips = two_classes
    sampling = Sampling(num_frames=4)
    ds = ClipDataset(clipset.samples, clipset.classes, sampling, size=None, train=False)
    assert len(ds) == 2
    frames, label = ds[1]
    assert label == 1 and frames.dtype == torch.uint8 and frames.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(frames.numpy(), clips["right"][sample_indices(16, sampling)])


def test_training_jitter_is_reproducible_per_epoch(two_classes):
    clipset, _ = two_classes
    make = lambda: ClipDataset(clipset.samples, clipset.classes, Sampling(num_frames=4), size=None, train=True, seed=3)
    a, b = make(), make()
    epochs = []
    for epoch in range(4):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert torch.equal(a[0][0], b[0][0])
        epochs.append(a[0][0])
    assert any(not torch.equal(epochs[0], e) for e in epochs[1:])


def test_transform_randomness_is_seeded(two_classes):
    clipset, _ = two_classes
    noisy = lambda clip: clip.float() + torch.rand(())
    ds = ClipDataset(clipset.samples, clipset.classes, Sampling(num_frames=2), size=None, train=True, transform=noisy)
    first = ds[0][0]
    torch.rand(5)  # the global generator moves on; items must not
    assert torch.equal(first, ds[0][0])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0][0])


def test_dataset_with_cache_decodes_once(two_classes, tmp_path, monkeypatch):
    clipset, clips = two_classes
    cache = ClipCache(tmp_path / "cache")
    sampling = Sampling(num_frames=4, grid=8)  # the cache keeps the 8 grid frames of each clip
    ds = ClipDataset(clipset.samples, clipset.classes, sampling, size=16, train=False, cache=cache)
    frames, label = ds[0]
    assert frames.shape == (4, 16, 16, 3) and label == 0

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr("snapaction.data.cache.read_frames", no_decoding)
    assert torch.equal(ds[0][0], frames)

    full = ClipDataset(clipset.samples, clipset.classes, sampling, size=None, train=False, cache=ClipCache(tmp_path / "c2"))
    monkeypatch.undo()
    got = full[1][0].numpy()
    np.testing.assert_array_equal(got, clips["right"][uniform_indices(16, 8)][sample_indices(8, sampling)])


def test_bad_clip_is_logged_and_dropped_from_batch(two_classes, caplog):
    clipset, _ = two_classes
    broken = clipset.samples[0].path.with_name("broken.mp4")
    broken.write_bytes(b"not a video at all")
    samples = clipset.samples + [Sample(broken, "left", "broken")]
    ds = ClipDataset(samples, clipset.classes, Sampling(num_frames=4), size=None, train=True)
    with caplog.at_level(logging.WARNING):
        failure = ds[2]
        assert failure.index == 2 and failure.path == str(broken) and failure.reason == "a text file, not a video"
        clips, labels, failed = collate_clips([ds[0], ds[2], ds[1]])
        assert collate_clips([ds[2]]) == (None, None, [failure])
    assert clips.shape == (2, 4, 32, 32, 3) and labels.tolist() == [0, 1] and failed == [failure]
    assert caplog.text.count("broken.mp4") == 1  # logged once: the later tries do not decode it again
    assert ds.failed == {2: failure.reason}


def test_dataset_in_a_dataloader_with_workers(two_classes):
    clipset, _ = two_classes
    ds = ClipDataset(clipset.samples * 3, clipset.classes, Sampling(num_frames=4), size=None, train=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_clips)
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [3, 3]
    assert torch.equal(batches[0][0][1], ds[1][0])  # same items in workers as in the main process


def test_unlabeled_and_unknown_labels(two_classes):
    clipset, _ = two_classes
    unlabeled = [Sample(s.path, None, s.group) for s in clipset.samples]
    ds = ClipDataset(unlabeled, [], Sampling(num_frames=2), size=None, train=False)
    assert ds[0][1] == -1
    with pytest.raises(DataError, match="'lefft'.*Did you mean 'left'"):
        ClipDataset([Sample(clipset.samples[0].path, "lefft", "g")], clipset.classes, Sampling(), None, False)
