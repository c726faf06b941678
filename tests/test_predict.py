"""Prediction: test-time augmentation, zero-shot checkpoints, and `snapaction predict` on files, folders and broken clips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import COLOURS, save_tiny_videomae, solid_clip, write_clip, write_video
from snapaction.cli import main
from snapaction.data.layout import collect_inputs

@pytest.fixture(scope="module")
def predictor(tiny_run):
    from snapaction.predict import Predictor

    return Predictor.load(tiny_run, device="cpu")


# --- test-time augmentation -------------------------------------------------------


def test_tta_is_deterministic_and_the_mean_of_single_views(predictor, tmp_path):
    # 32 frames: more than the run's grid of 16, so three temporal views can all differ.
    clip = write_clip(tmp_path / "red_long.mp4", COLOURS["red"], seed=7, t=32)
    first = predictor.predict(clip, views=3, crops=3)
    again = predictor.predict(clip, views=3, crops=3)
    assert first.views == 9
    assert first.probabilities == again.probabilities
    assert sum(first.probabilities.values()) == pytest.approx(1.0, abs=1e-6)

    inputs = predictor.views(clip, views=3, crops=3)  # (9, T, C, h, w)
    assert inputs.shape[0] == 9
    flat = inputs.flatten(1)
    assert len({tuple(flat[i, :: 997].tolist()) for i in range(9)}) == 9  # nine different views
    singles = torch.stack([predictor.probabilities(inputs[i : i + 1])[0] for i in range(9)])  # one view per forward pass
    mean = singles.mean(0)
    got = torch.tensor([first.probabilities[c] for c in predictor.classes])
    torch.testing.assert_close(got, mean / mean.sum(), atol=1e-5, rtol=0)


def test_batching_clips_does_not_change_predictions(predictor, tiny_run):
    clips = sorted((tiny_run.parent / "data" / "test").rglob("*.mp4"))
    one_by_one = [predictor.predict(c, views=2) for c in clips]
    batched = [p for _, p in predictor.predict_many(clips, views=2, batch_clips=4)]
    for a, b in zip(one_by_one, batched):
        assert a.label == b.label
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)


# --- zero-shot --------------------------------------------------------------------


KINETICS_LIKE = ["abseiling", "air drumming", "answering questions", "applauding", "applying cream"]


@pytest.fixture(scope="module")
def classification_checkpoint(tmp_path_factory) -> Path:
    """A tiny VideoMAEForVideoClassification with its own id2label, saved like a Kinetics-finetuned hub checkpoint."""
    return save_tiny_videomae(tmp_path_factory.mktemp("kinetics-like"), classify_as=KINETICS_LIKE)


def test_zero_shot_uses_the_checkpoints_labels(classification_checkpoint, tmp_path):
    from snapaction.predict import Predictor

    predictor = Predictor.from_backbone(str(classification_checkpoint), device="cpu")
    assert predictor.classes == KINETICS_LIKE
    assert predictor.sampling.num_frames == 4
    clip = write_clip(tmp_path / "clip.mp4", COLOURS["red"])
    prediction = predictor.predict(clip, views=2, crops=3)
    assert list(prediction.probabilities) == KINETICS_LIKE and prediction.label in KINETICS_LIKE
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_zero_shot_command(classification_checkpoint, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mp4", COLOURS["blue"])
    out = tmp_path / "p.json"
    assert main(["predict", "--backbone", str(classification_checkpoint), str(clip), "--json", str(out), "--top", "5"]) == 0
    data = json.loads(out.read_text())
    (pred,) = data["predictions"]
    assert pred["id"] == "clip" and set(pred["probabilities"]) == set(KINETICS_LIKE)
    printed = capsys.readouterr().out
    assert printed.startswith("clip: ") and all(label in printed for label in KINETICS_LIKE)


# --- collecting inputs --------------------------------------------------------------


def write_frames(folder: Path, colour, n: int = 6, seed: int = 0) -> Path:
    """A frame folder folder/img_00001.jpg ... of one noisy colour."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(solid_clip(colour, t=n, size=24, seed=seed)):
        Image.fromarray(frame).save(folder / f"img_{i + 1:05d}.jpg")
    return folder


def test_collect_inputs(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    kaggle = tmp_path / "test"
    for name in ("10", "2", "1"):
        write_frames(kaggle / name, COLOURS["red"], n=2)
    frames = write_frames(tmp_path / "one_clip", COLOURS["red"], n=2)
    (tmp_path / "dup" / "x").mkdir(parents=True)
    (tmp_path / "dup" / "x" / "a.mp4").write_bytes(b"x")
    clips, skipped = collect_inputs([str(p) for p in (tmp_path / "a.mp4", tmp_path / "notes.txt", kaggle, frames, tmp_path / "missing.mp4", tmp_path / "dup", tmp_path / "a.mp4")])
    ids = [i for i, _ in clips]
    assert ids == ["1", "2", "10", "a", "one_clip", "x/a"]  # natural order; a repeated stem gets its relative path
    assert dict(clips)["x/a"] == tmp_path / "dup" / "x" / "a.mp4"
    assert [Path(p).name for p, _ in skipped] == ["notes.txt", "missing.mp4"]
    assert "not a video file" in skipped[0][1] and "no such file" in skipped[1][1]


def test_clips_of_one_name_in_different_folders_get_ids_that_differ_and_are_named(tmp_path, caplog):
    for folder in ("a", "b", "c/b"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "clip.mp4").write_bytes(b"x")
    inputs = [tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", tmp_path / "c" / "b" / "clip.mp4"]
    clips, _ = collect_inputs([str(p) for p in inputs])
    assert [i for i, _ in clips] == ["a/clip", "b/clip", "c/b/clip"]  # paths from the folder the clips share
    assert {path for _, path in clips} == set(inputs)
    assert "share a name" in caplog.text and "a/clip" in caplog.text


# --- the command on a trained run ----------------------------------------------------


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_predict_csv_one_row_per_clip(tiny_run, tmp_path, capsys):
    test = tiny_run.parent / "data" / "test"
    out = tmp_path / "sub.csv"
    assert main(["predict", str(tiny_run), str(test), "--csv", str(out), "--views", "2"]) == 0
    rows = read_csv(out)
    expected = sorted(p.stem for p in test.rglob("*.mp4"))
    assert rows[0] == ["id", "class"]
    assert [r[0] for r in rows[1:]] == expected
    assert all(r[1] in COLOURS for r in rows[1:])
    printed = capsys.readouterr().out
    assert "blue_04: " in printed and f"wrote {len(expected)} row(s)" in printed


def test_broken_clips_are_named_and_the_rest_predicted(tiny_run, tmp_path, capsys):
    folder = tmp_path / "mixed"
    good = [write_clip(folder / f"good{i}.mp4", COLOURS["green"], seed=i) for i in range(3)]
    data = good[0].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "readme.txt").write_text("hello\n")
    out, js = tmp_path / "sub.csv", tmp_path / "sub.json"
    assert main(["predict", str(tiny_run), str(folder), "--csv", str(out), "--json", str(js)]) == 0
    rows = read_csv(out)
    ids = [r[0] for r in rows[1:]]
    assert rows[0] == ["id", "class"] and len(ids) == len(set(ids))
    assert {"good0", "good1", "good2"} <= set(ids)
    err = capsys.readouterr().err
    for name in ("empty.mp4", "text.mp4", "readme.txt"):
        assert name in err.split("skipped:")[-1]
    assert "truncated" in ids or "truncated.mp4" in err.split("skipped:")[-1]  # a cut tail may still decode
    data = json.loads(js.read_text())
    assert [p["id"] for p in data["predictions"]] == ids
    for p in data["predictions"]:
        assert set(p["probabilities"]) == set(COLOURS) and sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert {Path(s["path"]).name for s in data["skipped"]} >= {"empty.mp4", "text.mp4", "readme.txt"}


def test_kaggle_frame_folders(tiny_run, tmp_path):
    root = tmp_path / "kaggle_test"
    for name, colour in (("1", "red"), ("2", "blue"), ("10", "green")):
        write_frames(root / name, COLOURS[colour])
    broken = root / "3"
    broken.mkdir()
    (broken / "img_00001.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "sub.csv"
    assert main(["predict", str(tiny_run), str(root), "--csv", str(out), "--top", "0"]) == 0
    assert [r[0] for r in read_csv(out)] == ["id", "1", "2", "10"]


def test_exit_status_when_nothing_can_be_predicted(tiny_run, tmp_path, capsys):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert main(["predict", str(tiny_run), str(tmp_path / "empty.mp4"), str(tmp_path / "nope.mp4")]) == 1
    err = capsys.readouterr().err
    assert "empty.mp4" in err and "nope.mp4" in err and "nothing could be predicted" in err


def test_bad_run_folder_is_one_sentence(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no-run"), str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["predict", str(tmp_path)]) == 2
    assert "at least one clip" in capsys.readouterr().err


def test_timeline_command(tiny_run, tmp_path, capsys):
    clips = [solid_clip(COLOURS[c], t=20, size=32, seed=i)[:, 4:28] for i, c in enumerate(["red", "blue", "red"])]
    video = write_video(tmp_path / "long.mp4", np.concatenate(clips), fps=10, codec="libx264")
    out = tmp_path / "timelines"
    assert main(["predict", str(tiny_run), str(video), "--timeline", "--window", "1", "--stride", "0.5",
                 "--threshold", "0", "--timeline-dir", str(out)]) == 0
    folder = out / "long"
    assert {p.name for p in folder.iterdir()} == {"windows.csv", "segments.csv", "timeline.json", "timeline.png"}
    data = json.loads((folder / "timeline.json").read_text())
    assert len(data["windows"]) == 11  # 6 s, 1 s windows every 0.5 s
    segments = data["segments"]
    assert segments[0]["start"] == 0 and segments[-1]["end"] == pytest.approx(6.0)  # threshold 0: every window in a segment
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in zip(segments, segments[1:]))
    assert "long: 11 windows" in capsys.readouterr().out
    assert main(["predict", str(tiny_run), str(video), "--timeline", "--csv", "x.csv"]) == 2
    assert main(["predict", str(tiny_run), str(video), "--timeline", "--threshold", "1.5"]) == 2  # one sentence, no traceback
    assert "--threshold is a probability" in capsys.readouterr().err
    # a threshold no window reaches: said plainly, with the best the windows did
    assert main(["predict", str(tiny_run), str(video), "--timeline", "--window", "1", "--threshold", "1",
                 "--timeline-dir", str(tmp_path / "t2")]) == 0
    said = capsys.readouterr().out
    highest = max(max(w["probabilities"].values()) for w in json.loads((tmp_path / "t2" / "long" / "timeline.json").read_text())["windows"])
    assert "0 segment(s)" in said and "no window reached --threshold 1 " in said and f"had {highest:.2f}" in said


def test_a_near_tie_is_marked_unsure_everywhere_it_is_shown():
    from snapaction.results import UNSURE_MARGIN, Prediction

    tie = Prediction("pick", {"pick": 0.273, "drop": 0.265, "open": 0.237, "close": 0.225}, 1, 0.1)
    clear = Prediction("pick", {"pick": 0.70, "drop": 0.10, "open": 0.10, "close": 0.10}, 1, 0.1)
    assert tie.unsure and tie.margin == pytest.approx(0.008)
    assert not clear.unsure and clear.margin == pytest.approx(0.60)
    edge = Prediction("a", {"a": 0.5 + UNSURE_MARGIN / 2 + 1e-6, "b": 0.5 - UNSURE_MARGIN / 2 - 1e-6}, 1, 0.1)
    assert not edge.unsure  # a lead of exactly the margin (or more) is an answer
    assert clear.seen is None and clear.why_unsure() == "" and clear.to_dict()["seen"] is None
    seen = {"frames": 16, "body": 0, "hands": 3}  # the pose model saw next to nothing: a clear lead is still unsure
    thin = Prediction("pick", dict(clear.probabilities), 1, 0.1, seen, thin=True)
    assert thin.unsure and thin.why_unsure() == "little in view: a body in 0 and hands in 3 of 16 frames"
    assert thin.to_dict() == {"label": "pick", "unsure": True, "why_unsure": thin.why_unsure(),
                              "probabilities": clear.probabilities, "seen": seen}
    both = Prediction("pick", dict(tie.probabilities), 1, 0.1, seen, thin=True)
    assert both.why_unsure().endswith("; the top two are within 0.15")


def test_predict_prints_and_writes_the_unsure_flag(tiny_run, tmp_path, capsys):
    from snapaction.predict import Predictor

    clip = write_clip(tmp_path / "c.mp4", COLOURS["green"], seed=3)
    expected = Predictor.load(tiny_run).predict(clip)
    assert main(["predict", str(tiny_run), str(clip), "--json", str(tmp_path / "p.json")]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("c:")][0]
    assert ("(unsure" in line) == expected.unsure
    assert json.loads((tmp_path / "p.json").read_text())["predictions"][0]["unsure"] == expected.unsure


# --- validation and prediction see the same pixels ------------------------------

PARITY_CONFIGS = {
    "shortest_edge": {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}, "resample": 2},
    "height_width": {"size": {"height": 36, "width": 40}, "crop_size": {"height": 32, "width": 32}, "resample": 3,
                     "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
    "scratch": None,
}


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("config", sorted(PARITY_CONFIGS))
def test_validation_and_predictor_give_identical_model_inputs(config, cached, tmp_path):
    """A 4:3 clip through the validation dataset and through Predictor.views: not one value apart."""
    from snapaction.data.cache import ClipCache
    from snapaction.data.dataset import ClipDataset, ClipTransform
    from snapaction.data.layout import Sample
    from snapaction.models.backbone import preprocessing_for, resolve_sampling
    from snapaction.predict import Predictor
    from snapaction.preprocess import Preprocessing

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (20, 48, 64, 3), dtype=np.uint8)  # 4:3, textured, so any resize skew shows
    path = write_video(tmp_path / "clip.mp4", frames)
    if PARITY_CONFIGS[config] is None:
        prep, sampling = preprocessing_for("scratch"), resolve_sampling("scratch", None)
    else:
        prep, sampling = Preprocessing.from_backbone(PARITY_CONFIGS[config]), resolve_sampling("x", None, {"num_frames": 4})
    cache = ClipCache(tmp_path / "cache") if cached else None
    val = ClipDataset([Sample(path, "a", "g")], ["a"], sampling, size=prep.size, train=False, cache=cache, transform=ClipTransform(prep))
    seen_in_validation = val[0][0]
    predictor = Predictor(torch.nn.Identity(), ["a"], sampling, prep, "x", device="cpu")
    seen_in_prediction = predictor.views(path, views=1, crops=1)[0]
    assert seen_in_validation.shape == seen_in_prediction.shape == (sampling.num_frames, 3, *prep.crop)
    assert float((seen_in_validation - seen_in_prediction).abs().max()) == 0.0
    centre = predictor.views(path, views=1, crops=3)[1]  # the middle of three crops is the centre crop
    assert float((centre - seen_in_prediction).abs().max()) == 0.0
