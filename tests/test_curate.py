"""Curating unlabeled footage: every file kept or listed with the right reason, and long videos cut into segments."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_video
from snapaction.demo.clips import CLASSES, render_clip
from snapaction.errors import ConfigError, DataError
from snapaction.pretrain.curate import curate


def demo_frames(seed: int, t: int = 20, size: int = 48) -> np.ndarray:
    """uint8 (T, H, W, C): a demo clip, its own background and motion per seed."""
    return render_clip(CLASSES[seed % 4], np.random.default_rng(seed), size, t)


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """a/: four good clips; b/: a byte copy, a brightened re-encode, a still, a short clip, a broken file, a text file,
    a pipe and a link back to the top;
    c/d/: a good clip as a frame folder, two levels down."""
    root = tmp_path_factory.mktemp("footage")
    for i in range(4):
        write_video(root / "a" / f"clip{i}.mp4", demo_frames(i), codec="libx264")
    (root / "b").mkdir()
    shutil.copyfile(root / "a" / "clip0.mp4", root / "b" / "copy.mp4")
    brighter = np.clip(demo_frames(1).astype(int) + 15, 0, 255).astype(np.uint8)
    write_video(root / "b" / "near.mp4", brighter, codec="libx264", crf="28")
    write_video(root / "b" / "still.mp4", demo_frames(2)[[5] * 20], codec="libx264")
    write_video(root / "b" / "short.mp4", demo_frames(3)[:8], codec="libx264")
    (root / "b" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    (root / "b" / "notes.txt").write_text("shot on a phone\n")
    os.mkfifo(root / "b" / "pipe.mp4")  # reading it would block forever
    (root / "b" / "loop").symlink_to(root, target_is_directory=True)
    folder = root / "c" / "d" / "frames"
    folder.mkdir(parents=True)
    for t, frame in enumerate(demo_frames(5)):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")
    return root


def test_every_file_is_kept_or_listed_with_its_reason_and_the_first_of_duplicates_is_kept(footage):
    curation = curate(footage, workers=1, progress=False)
    kept = [clip.path.relative_to(footage).as_posix() for clip in curation.kept]
    assert kept == ["a/clip0.mp4", "a/clip1.mp4", "a/clip2.mp4", "a/clip3.mp4", "c/d/frames"]
    why = {Path(item.what).relative_to(footage).as_posix(): (item.kind, item.reason) for item in curation.left_out}
    assert {name: kind for name, (kind, _) in why.items()} == {
        "b/copy.mp4": "duplicate", "b/near.mp4": "near_duplicate", "b/still.mp4": "static",
        "b/short.mp4": "too_short", "b/broken.mp4": "unreadable", "b/notes.txt": "not_a_clip",
        "b/pipe.mp4": "not_a_clip", "b/loop": "not_a_clip",
    }
    assert why["b/loop"][1] == f"a link to the folder {footage}, already searched"
    assert why["b/pipe.mp4"][1].startswith("not a regular file or folder (a pipe")
    assert why["b/copy.mp4"][1] == f"the same bytes as {footage / 'a' / 'clip0.mp4'}, which is kept"
    assert why["b/near.mp4"][1].startswith(f"looks like {footage / 'a' / 'clip1.mp4'}, which is kept")
    assert why["b/short.mp4"][1] == "8 frames, fewer than the 16 asked for"
    assert "its frames change by 0.00 grey levels" in why["b/still.mp4"][1]
    assert "damaged or truncated MP4/MOV file" in why["b/broken.mp4"][1]
    assert "extension '.txt'" in why["b/notes.txt"][1]
    on_disk = {p for p in footage.rglob("*") if not p.is_dir() and p.parent.name != "frames"} | {footage / "c/d/frames", footage / "b/loop"}
    assert on_disk == {c.path for c in curation.kept} | {Path(item.what) for item in curation.left_out}  # nothing dropped silently

    assert curation.counts() == {"kept": 5, "not_a_clip": 3, "unreadable": 1, "too_short": 1, "duplicate": 1,
                                 "static": 1, "near_duplicate": 1}
    report = curation.report()
    assert "5 clips kept, 8 left out" in report
    assert "  byte-identical duplicate         1" in report
    assert "  b/copy.mp4: byte-identical duplicate: the same bytes as a/clip0.mp4, which is kept" in report
    whole = json.loads(json.dumps(curation.to_dict()))
    assert whole["counts"] == curation.counts() and len(whole["kept"]) == 5
    assert whole["kept"][4] == {"path": str(footage / "c/d/frames"), "start": 0.0, "end": None, "first": 0, "frames": 20,
                                "fps": whole["kept"][4]["fps"], "digest": curation.kept[4].digest}

    in_two = curate(footage, workers=2, progress=False)  # the process pool judges alike
    assert [c.path for c in in_two.kept] == [c.path for c in curation.kept] and in_two.left_out == curation.left_out


def test_a_long_video_is_cut_into_segments_each_judged_alone(tmp_path):
    video = write_video(tmp_path / "long.mp4", demo_frames(7, t=50), fps=10, codec="libx264")  # 5 s
    curation = curate(tmp_path, cut_seconds=2, workers=1, progress=False)
    assert [(c.first, c.frames, c.start, c.end) for c in curation.kept] == [(0, 20, 0.0, 2.0), (20, 20, 2.0, 4.0)]
    assert curation.left_out == [(f"{video} [4.0-5.0 s]", "too_short", "10 frames, fewer than the 16 asked for")]
    assert curation.kept[1].name == f"{video} [2.0-4.0 s]"
    assert curation.kept[1].indices(4).tolist() == [22, 27, 32, 37]  # frames of the video, inside the segment

    whole = curate(tmp_path, workers=1, progress=False)  # without cutting: one clip, no end
    assert [(c.first, c.frames, c.end) for c in whole.kept] == [(0, 50, None)]
    assert len(curate(tmp_path, cut_seconds=2, min_frames=8, workers=1, progress=False).kept) == 3


def test_bad_settings_are_all_reported_at_once_and_a_missing_folder_in_one_sentence(tmp_path):
    with pytest.raises(ConfigError) as err:
        curate(tmp_path, cut_seconds=0, near_duplicate_bits=64, min_frames=1)
    said = str(err.value)
    assert "cut_seconds must be above 0" in said and "near_duplicate_bits must be between 0 and 63" in said
    assert "min_frames must be at least 2, got 1" in said
    with pytest.raises(DataError, match="holds no clips"):
        curate(tmp_path, progress=False)
    with pytest.raises(DataError, match="does not exist"):
        curate(tmp_path / "nowhere", progress=False)
