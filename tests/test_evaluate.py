"""Metrics, calibration, the report folder, official split files (splits.py), and `snapaction eval` on a trained run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from snapaction.errors import DataError
from snapaction.evaluate import (
    Evaluation,
    calibration_bins,
    compute_metrics,
    expected_calibration_error,
    label_ids,
    not_held_out,
    top_k_accuracy,
    write_eval_report,
)
from snapaction.data.splits import official_split

CLASSES = ["a", "b", "c", "d"]


def test_ece_by_hand():
    # Two clips at confidence 0.95 (bin 10), one right; two at 0.55 (bin 6), both right.
    probs = np.array([[0.95, 0.05, 0, 0], [0.95, 0.05, 0, 0], [0.55, 0.45, 0, 0], [0.45, 0.55, 0, 0]])
    labels = np.array([0, 1, 0, 1])
    # bin (0.9, 1]: acc 0.5, conf 0.95 -> gap 0.45; bin (0.5, 0.6]: acc 1, conf 0.55 -> gap 0.45; each holds half the clips
    assert expected_calibration_error(probs, labels) == pytest.approx(0.45)
    bins = calibration_bins(probs, labels)
    assert len(bins) == 10 and [b["clips"] for b in bins] == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert bins[5]["low"] == pytest.approx(0.5) and bins[5]["high"] == pytest.approx(0.6)


def test_ece_is_zero_when_confidence_matches_accuracy():
    # confidence 1.0 and always right
    probs = np.eye(4)[[0, 1, 2, 3, 0]]
    assert expected_calibration_error(probs, np.array([0, 1, 2, 3, 0])) == 0.0
    # confidence exactly 0.25 (bin (0.2, 0.3]) and right one time in four
    flat = np.full((4, 4), 0.25)
    assert expected_calibration_error(flat, np.array([0, 1, 2, 3])) == pytest.approx(0.0)


def test_top_k_and_metrics_agree_with_sklearn():
    from sklearn.metrics import f1_score, top_k_accuracy_score

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=50)
    labels = rng.integers(0, 4, 50)
    m = compute_metrics(probs, labels, CLASSES)
    assert m["clips"] == 50
    assert m["accuracy"] == pytest.approx((probs.argmax(1) == labels).mean())
    assert m["top_k"]["top3"] == pytest.approx(top_k_accuracy_score(labels, probs, k=3, labels=range(4)))
    assert m["macro_f1"] == pytest.approx(f1_score(labels, probs.argmax(1), average="macro"))
    assert np.asarray(m["confusion_matrix"]).sum() == 50
    assert np.trace(m["confusion_matrix"]) == (probs.argmax(1) == labels).sum()
    assert set(m["per_class"]) == set(CLASSES)
    assert "top5" not in m["top_k"]  # no top-5 with 4 classes


def test_top_k_two_classes():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 0, 1])
    assert top_k_accuracy(probs, labels, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(probs, labels, 2) == 1.0


def test_macro_f1_ignores_classes_absent_and_never_predicted():
    probs = np.eye(4)[[0, 1, 0, 1]]
    m = compute_metrics(probs, np.array([0, 1, 0, 1]), CLASSES)
    assert m["macro_f1"] == 1.0
    assert m["per_class"]["c"]["support"] == 0


def test_label_ids_unknown_class_is_one_sentence():
    from snapaction.data.dataset import Sample

    samples = [Sample("x.mp4", "a", "x"), Sample("y.mp4", "B", "y"), Sample("z.mp4", "dd", "z")]
    with pytest.raises(DataError, match=r"\['dd'\].*Did you mean 'd'"):
        label_ids(samples, CLASSES)
    assert label_ids(samples[:2], CLASSES) == [0, 1]  # case-insensitive fallback


def test_write_report(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 3)
    probs = rng.dirichlet(np.ones(4) * 0.5, size=12)
    probs[np.arange(12), labels] += 0.5  # mostly right
    probs /= probs.sum(1, keepdims=True)
    paths = [f"clips/{CLASSES[y]}/{i}.mp4" for i, y in enumerate(labels)]
    ev = Evaluation(CLASSES, paths, labels, probs, views=2, crops=3, skipped=[("clips/bad.mp4", "not a readable video")])
    base = Evaluation(CLASSES, paths, labels, np.roll(probs, 1, axis=1))
    report = write_eval_report(tmp_path / "report", ev, base, {"run": "runs/x"})
    folder = tmp_path / "report"
    names = {p.name for p in folder.iterdir()}
    assert {"report.json", "confusion_matrix.png", "confusion_matrix.json", "reliability.png", "per_class.csv",
            "predictions.csv", "misclassified.csv", "summary.txt"} <= names
    saved = json.loads((folder / "report.json").read_text())
    assert saved["accuracy"] == pytest.approx((probs.argmax(1) == labels).mean())
    assert saved["without_tta"]["accuracy"] == pytest.approx((np.roll(probs, 1, axis=1).argmax(1) == labels).mean())
    assert saved["views"] == 2 and saved["crops"] == 3 and saved["run"] == "runs/x" and "not_held_out" not in saved
    assert saved["skipped"] == [{"path": "clips/bad.mp4", "reason": "not a readable video"}]
    cm = json.loads((folder / "confusion_matrix.json").read_text())
    assert cm["classes"] == CLASSES and np.asarray(cm["matrix"]).sum(1).tolist() == [3, 3, 3, 3]
    wrong = int((probs.argmax(1) != labels).sum())
    assert len(saved["misclassified"]) == wrong
    assert len((folder / "misclassified.csv").read_text().splitlines()) == wrong + 1
    assert len((folder / "predictions.csv").read_text().splitlines()) == 13
    assert (folder / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    umask = os.umask(0o022)
    os.umask(umask)
    for path in (folder, *folder.iterdir()):  # the usual permissions, not mkstemp's private ones
        assert path.stat().st_mode & 0o777 == (0o777 if path.is_dir() else 0o666) & ~umask
    assert "single view (no TTA)" in report["summary"] and "clips/bad.mp4" in report["summary"]
    # rewriting replaces the folder as a whole
    write_eval_report(folder, base)
    assert json.loads((folder / "report.json").read_text())["views"] == 1


def test_misclassified_lists_top_predictions():
    probs = np.array([[0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]])
    ev = Evaluation(CLASSES, ["x.mp4", "y.mp4"], np.array([0, 0]), probs)
    (wrong,) = ev.misclassified()
    assert wrong["path"] == "x.mp4" and wrong["true"] == "a" and wrong["predicted"] == "b"
    assert [c for c, _ in wrong["top"]] == ["b", "c", "a"]
    assert wrong["true_probability"] == pytest.approx(0.1)


# --- official split files ---------------------------------------------------------


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_ucf101_split(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
        "HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi\r\n"
    )
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n")
    videos = tmp_path / "UCF-101"
    _touch(videos / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    frames = videos / "HandstandPushups" / "v_HandStandPushups_g01_c01"  # extracted frames instead of the video
    _touch(frames / "00001.jpg")
    _touch(videos / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")

    for split in (lists / "testlist01.txt", lists):
        found, missing = official_split(videos, split)
        assert [(c.path.name, c.label, c.group) for c in found] == [
            ("v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup", "v_ApplyEyeMakeup_g01"),
            ("v_HandStandPushups_g01_c01", "HandstandPushups", "v_HandStandPushups_g01"),
        ]
        assert [p.name for p, _ in missing] == ["v_ApplyEyeMakeup_g02_c01.avi"]
    train, _ = official_split(videos, lists, part="train")
    assert [c.path.name for c in train] == ["v_ApplyEyeMakeup_g08_c01.avi"]
    with pytest.raises(DataError, match="testlist02.txt"):
        official_split(videos, lists, number=2)


def test_hmdb51_split(tmp_path):
    lists = tmp_path / "testTrainMulti_7030_splits"
    lists.mkdir()
    (lists / "brush_hair_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (lists / "cartwheel_test_split1.txt").write_text("d.avi 2 \n")
    (lists / "cartwheel_test_split2.txt").write_text("e.avi 2 \n")
    root = tmp_path / "hmdb51"
    for cls, name in (("brush_hair", "a.avi"), ("brush_hair", "b.avi"), ("cartwheel", "d.mp4"), ("cartwheel", "e.avi")):
        _touch(root / cls / name)
    found, missing = official_split(root, lists)
    assert [(c.path.name, c.label) for c in found] == [("b.avi", "brush_hair"), ("d.mp4", "cartwheel")]
    assert missing == []
    found, _ = official_split(root, lists / "cartwheel_test_split2.txt")
    assert [c.path.name for c in found] == ["e.avi"]
    found, _ = official_split(root, lists, part="train")
    assert [c.path.name for c in found] == ["a.avi"]


def test_split_errors_are_one_sentence(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        official_split(tmp_path, tmp_path / "nope.txt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not an official split file"):
        official_split(tmp_path, tmp_path / "notes.txt")
    (tmp_path / "testlist01.txt").write_text("A/v_A_g01_c01.avi\n")
    with pytest.raises(DataError, match="none of the 1 clips"):
        official_split(tmp_path, tmp_path / "testlist01.txt")


# --- `snapaction eval` on a trained run ------------------------------------------------


def test_eval_command_writes_the_report(tiny_run, tmp_path, capsys):
    from snapaction.cli import main

    import shutil

    test = tmp_path / "test"  # a copy: the run's data is shared with other test modules
    shutil.copytree(tiny_run.parent / "data" / "test", test)
    (test / "red" / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "report"
    assert main(["eval", str(tiny_run), str(test), "--views", "2", "--crops", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "single view (no TTA): 6 clips" in printed and "2 view(s) x 3 crop(s): 6 clips" in printed
    assert "broken.mp4" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["clips"] == 6 and report["views"] == 2 and report["crops"] == 3
    assert set(report["per_class"]) == {"blue", "green", "red"}
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["ece"] <= 1 and "without_tta" in report
    assert [s["path"].endswith("broken.mp4") for s in report["skipped"]] == [True]
    assert np.asarray(json.loads((out / "confusion_matrix.json").read_text())["matrix"]).sum() == 6
    from PIL import Image

    with Image.open(out / "confusion_matrix.png") as image:
        assert image.width >= 300 and image.height >= 300


def test_eval_default_folder_and_official_split(tiny_run, tmp_path, capsys):
    from snapaction.cli import main

    data = tiny_run.parent / "data" / "test"
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 blue\n2 green\n3 red\n")
    (lists / "testlist01.txt").write_text("red/red_04.avi\nblue/blue_05.avi\nblue/missing.avi\n")
    assert main(["eval", str(tiny_run), str(data), "--split", str(lists / "testlist01.txt")]) == 0
    report = json.loads((tiny_run / "eval-testlist01" / "report.json").read_text())
    assert report["clips"] == 2  # .avi listed, .mp4 on disk: found by stem
    assert [Path(s["path"]).name for s in report["skipped"]] == ["missing.avi"]
    assert main(["eval", str(tiny_run), str(data)]) == 0
    assert (tiny_run / "eval-test" / "confusion_matrix.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(tiny_run), str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_with_no_readable_clip_is_one_sentence(tiny_run, tmp_path, capsys):
    from snapaction.cli import main

    (tmp_path / "red").mkdir()
    (tmp_path / "red" / "a.mp4").write_bytes(b"")
    assert main(["eval", str(tiny_run), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "none of the 1 clips could be read" in err and "a.mp4" in err


def test_eval_warns_when_the_clips_are_the_runs_own_and_says_how_many(tiny_run, tmp_path, capsys):
    from snapaction.cli import main

    info = json.loads((tiny_run / "snapaction.json").read_text())
    trained, validated = len(info["clips"]["train"]), len(info["clips"]["val"])
    assert trained + validated == 12 and validated >= 3  # every clip of data/train, by content
    assert main(["eval", str(tiny_run), str(tiny_run.parent / "data" / "train"), "--out", str(tmp_path / "own")]) == 0
    err = capsys.readouterr().err
    assert f"{trained} of these 12 clips are ones this run trained on and {validated} its validation clips" in err
    report = json.loads((tmp_path / "own" / "report.json").read_text())
    assert report["overlap_with_training"] == {"train": trained, "val": validated, "clips": 12}
    assert report["not_held_out"].startswith(f"Not held out: of these 12 clips, {trained} trained the run and {validated} are")
    assert main(["eval", str(tiny_run), str(tiny_run.parent / "data" / "test"), "--out", str(tmp_path / "held-out")]) == 0
    assert "not a held-out figure" not in capsys.readouterr().err


def drawn_text(fig) -> list[str]:
    """Every piece of text a matplotlib figure draws (titles, notes, labels, cell counts)."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible()) if t.get_text()]


@pytest.mark.parametrize("classes", [
    ["shaking_hands", "shooting_basketball"],  # the studio's two classes, once drawn as "shaking_hanshooting_basketball"
    ["apply_eye_makeup", "arm_wrestling", "cleaning_pool", "drink_water", "shaking_hands", "shooting_basketball"],
    [f"playing_the_violin_{i}" for i in range(40)],
])
def test_confusion_matrix_is_sized_to_its_classes_and_no_two_names_overlap(classes):
    from snapaction.evaluate import confusion_figure

    k = len(classes)
    fig = confusion_figure(np.eye(k, dtype=int) * 3 + 1, classes, "accuracy 0.750, 12 clips")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    cell = ax.get_window_extent(renderer).width / k  # pixels between neighbouring names
    rows = [ax.transData.transform((0, i))[1] for i in range(k)]
    assert all(abs(abs(a - b) - cell) < 1 for a, b in zip(rows, rows[1:]))  # square cells
    assert 20 <= cell <= 80  # large cells for a few classes, small for many: never upscaled blocks or specks
    for axis, labels in (("x", ax.get_xticklabels()), ("y", ax.get_yticklabels())):
        assert ["".join(label.get_text().split("\n")) == name for label, name in zip(labels, classes)] == [True] * k, axis
        for label in labels:
            turned = label.get_rotation()
            label.set_rotation(0)
            thick = label.get_window_extent(renderer).height  # the text's own height, across its lines
            label.set_rotation(turned)
            long = label.get_window_extent(renderer).width if turned == 0 else 0
            # Neighbouring names are parallel strips `cell` apart along their axis. Column names turned by an angle
            # clear each other when a strip is thinner than the gap across it, cell * sin(angle); flat ones when
            # each is narrower than its cell. Row names are flat and `cell` apart across their strips.
            if axis == "x":
                assert (long < cell) if turned == 0 else (thick < cell * abs(np.sin(np.radians(turned)))), label.get_text()
            else:
                assert turned == 0 and thick < cell, label.get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_confusion_matrix_of_training_clips_says_so_on_the_picture(tmp_path, monkeypatch):
    import snapaction.evaluate as evaluate

    drawn = []
    real = evaluate.confusion_figure
    monkeypatch.setattr(evaluate, "confusion_figure", lambda *a, **kw: drawn.append(drawn_text(fig := real(*a, **kw))) or fig)
    labels = np.array([0, 0, 1, 1])
    ev = Evaluation(["a", "b"], [f"{i}.mp4" for i in range(4)], labels, np.eye(2)[labels] * 0.8 + 0.1)
    report = write_eval_report(tmp_path / "own", ev, about={"overlap_with_training": {"train": 3, "val": 1, "clips": 4}})
    said = "Not held out: of these 4 clips, 3 trained the run and 1 are its validation clips, which chose its kept epoch"
    assert report["not_held_out"] == said and json.loads((tmp_path / "own" / "report.json").read_text())["not_held_out"] == said
    assert said in [t.replace("\n", " ") for t in drawn[0]]  # wrapped over lines, in red above the matrix
    assert any("accuracy 1.000, 4 clips" in t for t in drawn[0])
    assert not_held_out({"train": 0, "val": 0, "clips": 4}) == not_held_out(None) == not_held_out({}) == ""
    assert not_held_out({"train": 2, "val": 0, "clips": 9}) == "Not held out: of these 9 clips, 2 trained the run"
