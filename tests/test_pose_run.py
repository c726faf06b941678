"""`--backbone pose` end to end on real people: train, eval, predict --csv and serve, with bad clips reported.

The clips are cut by the test from the shared real footage (apply_eye_makeup and cleaning_pool, small
frames that decode fast; arm_wrestling's opening, where the pose model finds hands and next to no body), so MediaPipe sees
real people and the run takes seconds. Nothing here
judges accuracy: the shared clips are one recording per action, not a training set.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import solid_clip, write_video
from snapaction.cli import main

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-clips"
pytestmark = pytest.mark.skipif(not (REAL / "drink_water.avi").is_file(), reason=f"the shared real clips are not at {REAL}")


def cut(source: Path, out: Path, start: int, stop: int) -> Path:
    """Frames [start, stop) of a real clip as an H.264 file the test owns."""
    from snapaction.video import probe, read_frames

    frames = read_frames(source, np.arange(start, min(stop, probe(source).num_frames)))
    return write_video(out, frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2], codec="libx264", preset="ultrafast")


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory):
    """A pose run trained on three cuts of each of two real clips, plus a clip with nobody, one where the pose
    model finds hands but next to no body (both trained on), and a one-frame clip (which does not decode)."""
    pytest.importorskip("mediapipe")
    root = tmp_path_factory.mktemp("pose-run")
    data = root / "data"
    for label, name, length in (("makeup", "apply_eye_makeup.avi", 164), ("pool", "cleaning_pool.mp4", 150)):
        step = length // 3
        for i in range(3):
            cut(REAL / name, data / label / f"{label}{i}.mp4", i * step, (i + 1) * step)
    write_video(data / "makeup" / "nobody.mp4", solid_clip((90, 120, 60), t=12, size=64, seed=1), codec="libx264")
    cut(REAL / "arm_wrestling.mp4", data / "makeup" / "nobody_found.mp4", 0, 93)
    cut(REAL / "apply_eye_makeup.avi", data / "pool" / "one_frame.mp4", 50, 51)
    run = root / "run"
    status = main(["train", str(data), "--backbone", "pose", "--out", str(run), "--num-frames", "6",
                   "--val-fraction", "0.34", "--cache-dir", str(root / "cache"), "--pose-temporal-epochs", "20"])
    assert status == 0
    return run, data


def test_the_run_folder_is_a_run_like_any_other_with_bad_clips_listed(pose_run):
    run, _ = pose_run
    info = json.loads((run / "snapaction.json").read_text())
    assert info["backbone"] == "pose" and info["weights"] == "pose" and info["classes"] == ["makeup", "pool"]
    assert info["sampling"]["num_frames"] == 6 and info["config"]["pose"]["frames"] == 6  # --num-frames reached the pose model
    skipped = {Path(s["path"]).name: s["reason"] for s in info["skipped"]}
    assert list(skipped) == ["one_frame.mp4"] and "it holds 1 frame, a still image" in skipped["one_frame.mp4"]
    report = json.loads((run / "report.json").read_text())  # nobody in view is no reason to leave a clip out
    assert report["pose"]["chosen"] in ("stats", "temporal") and 0 <= report["val_accuracy"] <= 1
    assert report["pose"]["num_train"] + report["pose"]["num_val"] == 8
    assert [Path(s["path"]).name for s in report["skipped"]] == ["one_frame.mp4"]
    assert (run / "pose" / "pose_settings.json").is_file()
    from PIL import Image

    with Image.open(run / "curves.png") as picture:  # every run has its picture: here, the two classifiers compared
        assert picture.format == "PNG" and picture.size == (500, 350)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["classifier"] for r in rows] == list(report["pose"]["val_accuracy"]) and [r["chosen"] for r in rows].count("True") == 1


def test_hands_are_found_where_the_body_is_not_on_real_close_ups(pose_run):
    from snapaction.pose.landmarks import LandmarkCache

    run, data = pose_run
    cache = LandmarkCache(Path(run).parent / "cache" / "landmarks", num_frames=6)
    wrestling = cache.get(data / "makeup" / "nobody_found.mp4")  # arm wrestling's opening: arms and hands, no whole body
    seen = wrestling.seen()
    assert seen["hands"] > seen["body"] and (wrestling.hand_present.any(1) & ~wrestling.present).sum() >= 4, seen  # 6 and 0 here
    hands = wrestling.hands[wrestling.hand_present]
    assert hands.shape[1:] == (21, 3) and ((hands[..., :2] > -0.1) & (hands[..., :2] < 1.1)).all()
    makeup = cache.get(data / "makeup" / "makeup0.mp4")  # a face close-up with a hand at the eye
    assert makeup.seen()["hands"] >= 4, makeup.seen()
    empty = cache.get(data / "makeup" / "nobody.mp4")
    assert empty.seen() == {"frames": 6, "body": 0, "hands": 0}


def test_eval_predict_csv_and_reload_agree(pose_run, tmp_path, capsys):
    from snapaction.predict import Predictor

    run, data = pose_run
    assert main(["eval", str(run), str(data), "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["clips"] == 8 and 0 <= report["accuracy"] <= 1  # every clip that decodes counts, nobody in view or not
    assert report["people"]["no_body"] >= 1 and report["people"]["nobody"] >= 1 and report["people"]["clips"] == 8
    assert any(p.endswith("nobody.mp4") for p in report["people"]["clips_no_body"])
    summary = (tmp_path / "eval" / "summary.txt").read_text()
    assert f"{report['people']['no_body']} of the 8 clips had no body in view" in summary
    assert "1 clip(s) could not be read" in summary and "one_frame.mp4" in summary  # the one that does not decode
    assert summary.count("could not be read") == 1
    clips = [data / "makeup" / "makeup0.mp4", data / "pool" / "pool2.mp4", data / "makeup" / "nobody.mp4"]
    capsys.readouterr()
    assert main(["predict", str(run), *map(str, clips), "--csv", str(tmp_path / "out.csv"), "--json", str(tmp_path / "out.json")]) == 0
    rows = list(csv.reader(open(tmp_path / "out.csv")))
    assert rows[0] == ["id", "class"] and sorted(r[0] for r in rows[1:]) == ["makeup0", "nobody", "pool2"]  # a row for every clip
    out = capsys.readouterr().out
    assert "nobody: " in out and "[body 0/6, hands 0/6 frames]" in out and "little in view" in out
    predictions = {p["id"]: p for p in json.loads((tmp_path / "out.json").read_text())["predictions"]}
    nobody = predictions["nobody"]
    assert nobody["seen"] == {"frames": 6, "body": 0, "hands": 0} and nobody["unsure"] is True
    assert "a body in 0 and hands in 0 of 6 frames" in nobody["why_unsure"]
    assert predictions["makeup0"]["seen"]["body"] >= 4
    predictor = Predictor.load(run)
    first = predictor.predict(clips[0])
    assert abs(sum(first.probabilities.values()) - 1) < 1e-6 and rows[1][1] == first.label
    assert Predictor.load(run).predict(clips[0]).probabilities == first.probabilities  # save -> load: identical


def test_the_web_app_serves_a_pose_run_with_a_timeline(pose_run, tmp_path):
    from fastapi.testclient import TestClient

    from snapaction.predict import Predictor
    from snapaction.web.app import create_app

    run, _ = pose_run
    long_clip = REAL / "apply_eye_makeup.avi"  # 6.6 s: longer than one window
    with TestClient(create_app(Predictor.load(run), tmp_dir=tmp_path)) as client:
        assert client.get("/api/info").json()["backbone"] == "pose"
        answer = client.post("/api/predict", files={"video": ("whole.avi", long_clip.read_bytes(), "video/x-msvideo")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["probabilities"]) == {"makeup", "pool"} and abs(sum(body["probabilities"].values()) - 1) < 1e-6
    assert body["windows"] and all(abs(sum(w["probabilities"].values()) - 1) < 1e-6 for w in body["windows"])
    assert body["seen"]["frames"] == 6 and body["seen"]["body"] >= 4 and isinstance(body["why_unsure"], str)
    skeleton = body["skeleton"]  # what the page draws over the video: the frames the model saw
    assert (skeleton["width"], skeleton["height"]) == (320, 240) and len(skeleton["frames"]) == 6
    found = [f for f in skeleton["frames"] if f["present"]]
    assert found and all(len(f["points"]) == 33 for f in found)
    nose = np.array([f["points"][0][:2] for f in found])
    assert ((nose > 0) & (nose < 1)).all()  # a face close-up: the nose is in the picture


@pytest.mark.browser
def test_the_page_draws_the_skeleton_over_the_clip(pose_run, tmp_path, live_server_for, browser):
    from playwright.sync_api import expect

    run, _ = pose_run
    base = live_server_for(run)
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    try:
        page.goto(base + "/")
        page.set_input_files("#file-input", str(cut(REAL / "apply_eye_makeup.avi", tmp_path / "short.mp4", 0, 50)))  # one window
        expect(page.locator("#top-label")).not_to_be_empty(timeout=60_000)
        expect(page.locator("#skeleton")).to_be_visible()
        # the overlay follows the playing time; a seek redraws it (whether or not this browser plays the codec)
        page.evaluate("() => document.getElementById('clip').dispatchEvent(new Event('seeked'))")
        drawn = page.evaluate("""() => {
            const c = document.getElementById('skeleton');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n; }""")
        assert drawn > 200  # bones and joints, not an empty canvas
    finally:
        page.close()


def test_without_mediapipe_pose_training_fails_at_once_with_the_install_command(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))
    status = main(["train", str(tmp_path / "not-even-scanned"), "--backbone", "pose", "--out", str(tmp_path / "run")])
    assert status == 2
    assert 'pip install "snapaction[pose]"' in capsys.readouterr().err


def test_pose_preview_writes_a_strip_of_the_frames(tmp_path, capsys):
    pytest.importorskip("mediapipe")
    from PIL import Image

    clip = cut(REAL / "apply_eye_makeup.avi", tmp_path / "makeup.mp4", 0, 40)
    assert main(["pose", "--preview", str(clip), "--frames", "3"]) == 0
    strip = Image.open(tmp_path / "makeup.pose.png")
    assert strip.size == (3 * 320, 240)  # three frames side by side, at the clip's own size (below 240 px: not scaled)
    assert "a body in 3 and hands in 3 of the 3 frames" in capsys.readouterr().out
    empty = write_video(tmp_path / "empty.mp4", solid_clip((90, 120, 60), t=8, size=64, seed=1), codec="libx264")
    assert main(["pose", "--preview", str(empty), "--frames", "2"]) == 0
    out = capsys.readouterr().out
    assert "a body in 0 and hands in 0 of the 2 frames (frames without a body have a red border)" in out
    marked = np.asarray(Image.open(tmp_path / "empty.pose.png").convert("RGB"))
    assert marked.shape == (64, 128, 3) and tuple(marked[0, 0]) == (230, 40, 40) and tuple(marked[0, 64]) == (230, 40, 40)
    assert main(["pose", "--preview", str(clip), "--frames", "0"]) == 2  # a bad value is one sentence, not a traceback
    (tmp_path / "a-file").write_text("x")
    capsys.readouterr()
    assert main(["pose", "--preview", str(clip), "--out", str(tmp_path / "a-file" / "strip.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the preview" in err and "a-file" in err and "pass --out" in err


def test_mediapipe_log_lines_never_reach_the_terminal_and_other_output_does(tmp_path):
    """MediaPipe and TensorFlow Lite write glog lines to descriptor 2 from C++ (while graphs start and on frames with
    hands); a subprocess, so the descriptor is really the one a user's terminal would get."""
    pytest.importorskip("mediapipe")
    import subprocess
    import sys

    script = (
        "import os, numpy as np\n"
        "from snapaction.pose.landmarks import detect, detect_hands, quiet_stderr\n"
        "from snapaction.video import read_frames\n"
        f"frames = read_frames({str(REAL / 'apply_eye_makeup.avi')!r}, np.array([10, 80]))\n"
        "present, hands = detect(frames)[3], detect_hands(frames)[1]\n"
        "with quiet_stderr():\n"
        "    os.write(2, b'W0000 00:00:1.5   123 fake.cc:1] a log line\\nour own warning\\n')\n"
        "print(int(present.sum()), int(hands.any(1).sum()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "2"]  # the face close-up: a body and hands in both frames
    assert done.stderr == "our own warning\n"  # no W0000 / Feedback manager / XNNPACK lines; the rest is passed on


def test_real_footage_with_nobody_in_view_gets_a_prediction_marked_unsure(pose_run, tmp_path, capsys):
    """The top-left corner of shooting_basketball: a real gym wall, no person (checked: no body, no hand in any frame)."""
    from snapaction.video import probe, read_frames

    run, _ = pose_run
    source = REAL / "shooting_basketball.mp4"
    frames = read_frames(source, np.arange(0, 90, 3), info=probe(source))[:, :96, :96]
    corner = write_video(tmp_path / "gym_corner.mp4", np.ascontiguousarray(frames), codec="libx264", preset="ultrafast")
    assert main(["predict", str(run), str(corner), "--csv", str(tmp_path / "p.csv"), "--json", str(tmp_path / "p.json")]) == 0
    (row,) = list(csv.reader(open(tmp_path / "p.csv")))[1:]
    (pred,) = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert row == ["gym_corner", pred["label"]] and pred["label"] in ("makeup", "pool")
    assert pred["seen"] == {"frames": 6, "body": 0, "hands": 0} and pred["unsure"] and "little in view" in pred["why_unsure"]
    assert "gym_corner: " in capsys.readouterr().out
