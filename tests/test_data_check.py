"""`snapaction data check` and the `check` / `usable` functions behind it."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import write_video
from snapaction import cli
from snapaction.data.check import CheckSettings, check, usable
from snapaction.data.layout import scan


@pytest.fixture(autouse=True)
def only_data_check(monkeypatch):
    """Build the real parser with this command alone, whatever state the other commands are in."""
    monkeypatch.setattr(cli, "COMMANDS", {("data", "check"): "data_check"})


def frames_of(seed: int, t: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, 32, 32, 3), dtype=np.uint8)


def make_dataset(root: Path, per_class: dict[str, int]) -> Path:
    for k, (label, n) in enumerate(per_class.items()):
        for i in range(n):
            write_video(root / label / f"{label}{i}.mp4", frames_of(100 * k + i))
    return root


def write_streamable(path: Path, frames: np.ndarray, ext_options: dict | None = None) -> Path:
    """A clip whose index comes first (MP4 faststart, Matroska), so a cut file still opens."""
    with av.open(str(path), "w", options=ext_options or {}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["data", "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def lines_naming(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if name in line]


def test_bad_files_are_listed_with_reasons_and_skipped(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", {"drop": 5, "wave": 5})
    shutil.copy(root / "drop" / "drop0.mp4", root / "drop" / "truncated.mp4")
    cut_in_half(root / "drop" / "truncated.mp4")
    (root / "wave" / "zero.mp4").write_bytes(b"")
    (root / "wave" / "text.mp4").write_text("this is a text file, not a video\n")

    code, out, err = run_cli(capsys, str(root))
    assert code == 0, err
    assert "truncated" in lines_naming(out, "drop/truncated.mp4")[0]
    assert "empty (0 bytes)" in lines_naming(out, "wave/zero.mp4")[0]
    assert "text file, not a video" in lines_naming(out, "wave/text.mp4")[0]
    assert "Unusable clips (3)" in out
    table = {line.split()[0]: line.split()[1:3] for line in out.splitlines() if line.startswith(("drop ", "wave ", "(total) "))}
    assert table == {"drop": ["5", "1"], "wave": ["5", "2"], "(total)": ["10", "3"]}
    assert "Ready to train." in out

    report = check(root)
    assert report.ok and report.counts() == {"drop": 5, "wave": 5}
    assert sorted(p.name for p, _ in report.unusable) == ["text.mp4", "truncated.mp4", "zero.mp4"]


def test_truncated_streamable_files_are_caught_by_decoding(tmp_path):
    root = make_dataset(tmp_path / "data", {"a": 2, "b": 2})
    cut_in_half(write_streamable(root / "a" / "fast.mp4", frames_of(7, t=16), {"movflags": "faststart"}))
    cut_in_half(write_streamable(root / "b" / "cut.mkv", frames_of(8, t=16)))

    report = check(root)
    reasons = {p.name: r for p, r in report.unusable}
    assert set(reasons) == {"fast.mp4", "cut.mkv"}
    assert all("truncated" in r for r in reasons.values()), reasons

    quick = check(root, CheckSettings(full_decode=False))  # headers only: the cut files slip through
    assert not quick.unusable


def test_empty_folder_fails_with_one_sentence(tmp_path, capsys):
    code, out, err = run_cli(capsys, str(tmp_path))
    assert code != 0 and out == ""
    message = err.strip()
    assert message.startswith("snapaction: error: ") and "is empty" in message
    assert len(message.splitlines()) == 1 and message.count(". ") == 0 and message.endswith(".")


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda root: make_dataset(root, {"only": 3}), "only one class ('only')"),
        (lambda root: [(root / c).mkdir(parents=True) or (root / c / "x.mp4").write_bytes(b"") for c in "ab"], "none of the 2 clips"),
        (lambda root: make_dataset(root, {"a": 1, "b": 1}) and cut_in_half(root / "b" / "b0.mp4"), "only one class ('a')"),
    ],
)
def test_unusable_datasets_exit_non_zero(tmp_path, capsys, build, words):
    build(tmp_path / "data")
    code, out, err = run_cli(capsys, str(tmp_path / "data"))
    assert code == 1
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("Cannot train: ") and words in verdict


def test_unlabeled_folder_is_reported_but_not_trainable(tmp_path):
    for k in range(2):
        folder = tmp_path / f"{k:04d}"
        folder.mkdir()
        for i, frame in enumerate(frames_of(k, t=3)):
            Image.fromarray(frame).save(folder / f"{i}.jpg")
    report = check(tmp_path)
    assert report.layout == "unlabeled" and len(report.clips) == 2
    assert not report.ok and "no labels" in report.reason
    assert "(unlabeled)" in report.format()


def test_warnings_imbalance_duplicates_small_classes(tmp_path):
    root = make_dataset(tmp_path / "data", {"big": 9, "small": 3, "mid": 5})
    shutil.copy(root / "big" / "big0.mp4", root / "small" / "copy_of_big0.mp4")
    shutil.copy(root / "big" / "big1.mp4", root / "big" / "big1_again.mp4")

    report = check(root)
    text = "\n".join(report.warnings)
    assert "class imbalance: 'big' has 10 usable clips, 'small' only 4 (2.5x)" not in text  # below the 3x default
    assert "fewer than 5 usable clips: 'small' (4)" in text
    assert "across classes ['big', 'small']: big/big0.mp4, small/copy_of_big0.mp4" in text
    assert "byte-identical duplicates: big/big1.mp4, big/big1_again.mp4" in text
    assert "big1_again" not in lines_naming(text, "across")[0]

    strict = check(root, CheckSettings(imbalance=2.0, min_clips=3))
    assert any("class imbalance: 'big' has 10 usable clips, 'small' only 4 (2.5x)" in w for w in strict.warnings)
    assert not any("fewer than" in w for w in strict.warnings)


def test_too_few_frames_and_frame_folder_problems(tmp_path):
    root = make_dataset(tmp_path / "data", {"a": 2, "b": 2})
    write_video(root / "a" / "still.mp4", frames_of(3, t=1))
    for name, frames in (("v1", frames_of(4, t=3)), ("v2", frames_of(5, t=3))):
        (root / "b" / name).mkdir()
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(root / "b" / name / f"{i}.png")
    (root / "b" / "v1" / "1.png").write_bytes(b"broken")
    Image.fromarray(frames_of(6)[0][:16]).save(root / "b" / "v2" / "2.png")

    write_video(root / "a" / "short.mp4", frames_of(3, t=2))
    reasons = {p.name: r for p, r in check(root).unusable}
    # one rule everywhere (probe, so also predict and serve): a clip of one frame is a still image
    assert reasons["still.mp4"] == "it holds 1 frame, a still image rather than a clip; an action needs at least 2 frames"
    assert "short.mp4" not in reasons
    assert "frame 1.png is not a readable image" in reasons["v1"]
    assert "frame 2.png is 32x16" in reasons["v2"]
    assert {p.name: r for p, r in check(root, CheckSettings(min_frames=3)).unusable}["short.mp4"] == "too few frames: 2 (at least 3 needed)"


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for _ in range(4):
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_usable_probes_and_keeps_order(tmp_path):
    root = make_dataset(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "a1.mp4").write_bytes(b"")
    write_audio_only(root / "b" / "b1.mp4")
    clips = scan(root)
    good, bad = usable(clips.samples, workers=4)
    assert [s.path.name for s in good] == ["a0.mp4", "a2.mp4", "b0.mp4", "b2.mp4"]
    assert [(p.name, r) for p, r in bad] == [("a1.mp4", "the file is empty (0 bytes)"), ("b1.mp4", "the file has no video stream")]


def test_an_unexpected_error_is_reported_not_raised(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", {"a": 2, "b": 2})

    def fragile(path):
        if path.name == "a1.mp4":
            raise RuntimeError("decoder bug")
        return real(path)

    from snapaction.data import check as datacheck

    real = datacheck.probe
    monkeypatch.setattr(datacheck, "probe", fragile)
    assert check(root).unusable == [(root / "a" / "a1.mp4", "could not be read (RuntimeError: decoder bug)")]
    assert usable(scan(root).samples)[1] == [(root / "a" / "a1.mp4", "could not be read (RuntimeError: decoder bug)")]


def test_manifest_and_json_output(tmp_path, capsys):
    make_dataset(tmp_path / "clips", {"a": 2, "b": 2})
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label\nclips/a/a0.mp4,a\nclips/a/a1.mp4,a\nclips/b/b0.mp4,b\nclips/gone.mp4,b\n")
    code, out, _ = run_cli(capsys, str(manifest), "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["layout"] == "manifest"
    assert data["counts"] == {"a": 2, "b": 1}
    assert data["skipped"] == [{"path": str(tmp_path / "clips" / "gone.mp4"), "reason": "listed on line 5 of list.csv but does not exist"}]
    assert data["clips"][0]["frames"] == 12 and data["clips"][0]["width"] == 32


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["data", "check", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    parser = argparse.ArgumentParser()
    from snapaction.commands import data_check

    data_check.add_arguments(parser)
    flags = [a for action in parser._actions for a in action.option_strings if a not in ("-h", "--help")]
    assert len(flags) >= 6
    for action in parser._actions:
        assert action.help and len(action.help) > 20, action.option_strings
        for flag in action.option_strings:
            assert flag in text
    assert "Exit status" in text and "ROOT" in text


def test_bad_setting_is_reported(capsys):
    code = cli.main(["data", "check", ".", "--min-frames", "0"])
    assert code == 2
    assert "min_frames must be at least 2 (a clip of one frame is a still image), got 0" in capsys.readouterr().err


def test_a_long_check_shows_progress_and_one_class_is_one_class(tmp_path, capsys):
    from snapaction.data.check import check

    root = make_dataset(tmp_path / "clips", {"only": 8})
    report = check(root)
    assert "clips checked" in capsys.readouterr().err  # eight clips or more: a progress bar on stderr
    assert "1 class," in report.format() and "1 classes" not in report.format()
