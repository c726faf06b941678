"""What SnapAction says: every command's --help, every input kind a help text lists, and one wording per problem
with a clip, whichever command meets it."""

from __future__ import annotations

import contextlib
import io
import logging
import re

import pytest

from snapaction.cli import COMMANDS, main

# --- help texts -----------------------------------------------------------------------

DEBRIS = {
    "argparse internals": re.compile(r"'option_strings'|'dest':|<argparse\.|object at 0x"),
    "an unrendered %-format": re.compile(r"%\(|%%|%[sdrfgi]\b"),
    "a Python None": re.compile(r"\bNone\b"),
    "a default that says nothing": re.compile(r"\(default: ?(none|\[\]|\(\)|''|)\)", re.IGNORECASE),
}


def help_text(*words: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([*words, "--help"])
    assert done.value.code == 0, words
    return out.getvalue()


def option_entries(text: str) -> list[str]:
    """Each option's (or positional's) entry of a help text, its wrapped lines joined."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^  \S", line):
            entries.append([line.strip()])
        elif re.match(r"^ {3,}\S", line) and entries:
            entries[-1].append(line.strip())
        else:
            entries.append([])  # a heading or a blank line ends an entry
    return [" ".join(e) for e in entries if e]


def every_help() -> list[tuple[str, ...]]:
    groups = sorted({words[:-1] for words in COMMANDS if len(words) > 1})
    return [()] + groups + sorted(COMMANDS)


@pytest.mark.parametrize("words", every_help(), ids=lambda w: " ".join(w) or "snapaction")
def test_every_help_text_renders_clean(words):
    text = help_text(*words)
    flat = " ".join(text.split())  # a default wrapped onto the next line reads as one
    problems = [f"{what}: ...{flat[max(0, m.start() - 60):m.end() + 20]}" for what, pattern in DEBRIS.items() for m in pattern.finditer(flat)]
    problems += [f"two defaults in one option: {e}" for e in option_entries(text) if len(re.findall(r"\(default\b", e)) > 1]
    assert not problems, f"`snapaction {' '.join(words)} --help`:\n" + "\n".join(problems)


def test_a_percent_in_a_documented_field_is_shown_as_written():
    entry = next(e for e in option_entries(help_text("train")) if e.startswith("--gradient-checkpointing"))
    assert entry.endswith("much less memory, about 27% slower (LoRA on VideoMAE-base, CPU) (default: False)") and "{" not in entry, entry


# --- every input kind a help text lists, for every command that lists it ----------------------

TEXT = "a text file, not a video"
NO_STREAMS = "the file has no video stream (it holds no streams at all)"


def write_frames(folder, colour, seed: int = 0, t: int = 4):
    from PIL import Image

    from conftest import solid_clip

    folder.mkdir(parents=True)
    for i, frame in enumerate(solid_clip(colour, t=t, seed=seed, moving="down")[:, 4:28]):
        Image.fromarray(frame).save(folder / f"{i + 1}.png")
    return folder


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """Every kind of input the help texts list, of tiny clips (24x32, 4-6 frames), and two files that are no clips.

    clips/<class>/*.mp4 (and a download with no extension), frames/<class>/<id>/*.png, kaggle/<id>/*.png,
    loose/*.mp4, bad/ (a text file and an MP4 with no streams, both named .mp4), list.csv (path,label: a video,
    the download, a frame folder and the two bad files) and paths.csv (path only).
    """
    import shutil

    from conftest import COLOURS, write_clip
    from corpus import good_clip, mp4_without_tracks

    root = tmp_path_factory.mktemp("kinds")
    for label in ("red", "blue"):
        for i in range(2):
            write_clip(root / "clips" / label / f"{label}{i}.mp4", COLOURS[label], seed=i, t=6)
            write_frames(root / "frames" / label / f"{label}{i}", COLOURS[label], seed=i)
    shutil.copy(root / "clips" / "red" / "red0.mp4", root / "clips" / "red" / "videoplayback")
    write_frames(root / "kaggle" / "k0", COLOURS["green"])
    write_clip(root / "loose" / "loose0.mp4", COLOURS["green"], t=6)
    (root / "bad").mkdir()
    (root / "bad" / "text.mp4").write_text("shot list: take 1, take 2\n")
    (root / "bad" / "nostreams.mp4").write_bytes(mp4_without_tracks(good_clip(root / "seed.mp4", t=4).read_bytes()))
    (root / "seed.mp4").unlink()
    (root / "list.csv").write_text("path,label\nclips/red/red1.mp4,red\nclips/red/videoplayback,red\nframes/blue/blue1,blue\n"
                                   "bad/text.mp4,red\nbad/nostreams.mp4,blue\n")
    (root / "paths.csv").write_text("path\nclips/blue/blue0.mp4\nkaggle/k0\n")
    return root


def names(paths) -> list[str]:
    """Paths as their last two parts ('red/red0.mp4'), sorted: the same clip whichever input found it."""
    from pathlib import Path

    return sorted("/".join(Path(p).parts[-2:]) for p in paths)


def reasons(listed) -> dict[str, str]:
    return {"/".join(str(path).split("/")[-2:]): reason for path, reason in listed}


CLASS_VIDEOS = ["blue/blue0.mp4", "blue/blue1.mp4", "red/red0.mp4", "red/red1.mp4", "red/videoplayback"]
CLASS_FRAMES = ["blue/blue0", "blue/blue1", "red/red0", "red/red1"]
LISTED = ["blue/blue1", "red/red1.mp4", "red/videoplayback"]
BAD = {"bad/text.mp4": TEXT, "bad/nostreams.mp4": NO_STREAMS}
USED_BY_CONTENT = "videoplayback has no extension; its content is a video (32x24, 6 frames), so it is used"


def test_predict_reads_every_input_kind_its_help_lists(kinds, tiny_run, tmp_path, caplog):
    """A video file, a frame folder, a folder of clips, a folder of class folders, a Kaggle-style test folder, CSV
    manifests with and without labels, and a glob the shell left alone: `predict RUN test.csv` crashed with
    NotADirectoryError."""
    import json

    k = kinds
    out = tmp_path / "p.json"
    inputs = [k / "loose" / "loose0.mp4", k / "frames" / "red" / "red0", k / "loose", k / "frames", k / "kaggle",
              k / "list.csv", k / "paths.csv", k / "clips" / "blue" / "*1.mp4", k / "clips" / "*.avi"]
    with caplog.at_level(logging.WARNING, logger="snapaction"):
        code = main(["predict", str(tiny_run), *map(str, inputs), "--json", str(out), "--top", "0"])
    assert code == 0
    written = json.loads(out.read_text())
    assert names(p["path"] for p in written["predictions"]) == sorted(
        ["loose/loose0.mp4", *CLASS_FRAMES, "kaggle/k0", "red/red1.mp4", "red/videoplayback", "blue/blue0.mp4", "blue/blue1.mp4"])
    assert reasons((s["path"], s["reason"]) for s in written["skipped"]) == {**BAD, "clips/*.avi": "no file or folder matches this pattern"}
    assert USED_BY_CONTENT in caplog.text


@pytest.mark.parametrize("data, clips", [("clips", CLASS_VIDEOS), ("frames", CLASS_FRAMES), ("list.csv", LISTED)])
def test_eval_train_curve_data_check_and_mask_find_the_same_clips(kinds, data, clips, caplog):
    """Class folders of videos, class folders of frame folders and a manifest, as eval, train, curve, data check
    and mask read them: the same clips (a manifest's entry with no extension read by its content, as in a folder:
    eval refused it as 'not a video file (no extension...)'), and the same reason for each file that is no clip."""
    from snapaction.data.check import check
    from snapaction.data.dataset import labelled_clips
    from snapaction.data.layout import scan
    from snapaction.data.splits import eval_samples

    root = kinds / data
    with caplog.at_level(logging.WARNING, logger="snapaction"):
        evaluated, unusable = eval_samples(root)
    assert USED_BY_CONTENT in caplog.text or data == "frames"
    _, trained, left_out = labelled_clips(root)  # what train (prepare_data) and curve read
    report = check(root)
    bad = BAD if data == "list.csv" else {}
    assert names(s.path for s in trained) == names(c.path for c in report.clips) == clips
    assert names(s.path for s in evaluated) == names(s.path for s in scan(root).samples) == sorted(clips + list(bad))  # mask: scan
    assert reasons(left_out) == reasons(report.unusable) == bad
    assert not unusable and not report.skipped
    assert [n for _, n in report.notes] == ([USED_BY_CONTENT.removeprefix("videoplayback ")] if data != "frames" else [])


def test_eval_gives_the_same_reasons(kinds, tiny_run):
    """A text file named .mp4 and an MP4 with no streams, in the words every command uses (data check, train and
    predict above; the web apps in test_corpus.py): eval said 'not a readable video (Invalid data found ...)' and
    'the file is damaged in a way FFmpeg does not report (ValueError: stream_options were provided, ...)'."""
    from snapaction.data.splits import eval_samples
    from snapaction.evaluate import evaluate
    from snapaction.predict import Predictor

    samples, _ = eval_samples(kinds / "list.csv")
    result = evaluate(Predictor.load(tiny_run), samples, 1, 1)
    assert names(result.paths) == LISTED and reasons(result.skipped) == BAD


def test_data_check_reads_an_unlabeled_folder_and_shard_every_kind_it_lists(kinds):
    """data check: an unlabeled folder of frame folders; shard (and pretrain, which curates the same way): a folder
    of clips at any depth, one video (refused as 'a file but not a .csv manifest'), or a CSV manifest."""
    from snapaction.data.check import check
    from snapaction.data.layout import walk

    report = check(kinds / "kaggle")
    assert report.layout == "unlabeled" and names(c.path for c in report.clips) == ["kaggle/k0"] and "no labels" in report.reason
    assert names(s.path for s in walk(kinds).samples) == sorted(CLASS_VIDEOS + CLASS_FRAMES + ["kaggle/k0", "loose/loose0.mp4"] + list(BAD))
    assert names(s.path for s in walk(kinds / "loose" / "loose0.mp4").samples) == ["loose/loose0.mp4"]
    assert names(s.path for s in walk(kinds / "list.csv").samples) == sorted(LISTED + list(BAD))


# --- arguments in the wrong order -------------------------------------------------------------


def test_a_clip_where_the_run_folder_goes_is_said_with_the_usage(kinds, tiny_run, capsys):
    """`predict CLIP RUN` said 'run folder CLIP does not exist; train one with `snapaction train DATA --out CLIP`'."""
    clip = kinds / "clips" / "red" / "red0.mp4"
    for argv, usage, said in [
        (["predict", str(clip), str(tiny_run)], "usage: snapaction predict [options] RUN PATH [PATH ...]",
         f"{clip} is a video file, not a run folder; the run folder comes first, and {tiny_run}, given after it, is one"),
        (["eval", str(kinds / "list.csv"), str(tiny_run)], "usage: snapaction eval ",
         f"{kinds / 'list.csv'} is a CSV manifest, not a run folder; the run folder comes first, and {tiny_run}, given after it, is one"),
        (["eval", str(kinds / "clips"), str(tiny_run)], "usage: snapaction eval ",
         f"{kinds / 'clips'} is not a run folder; the run folder comes first, and {tiny_run}, given after it, is one"),
        (["predict", str(clip), str(clip)], "usage: snapaction predict",
         f"{clip} is a video file, not a run folder; the run folder (the --out folder of `snapaction train`) comes first"),
        (["serve", str(clip)], "usage: snapaction serve ",
         f"{clip} is a video file, not a run folder; pass the --out folder of `snapaction train`"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(usage) and err.endswith(f"\nsnapaction: error: {said}\n"), (argv, err)
