"""The studio's API through FastAPI's test client: classes, clips, trash, training with events, live predictions.

One real training run (scratch preset, tiny clips, started and stopped through
the routes) is shared by the tests that need a run, so the whole file takes a
few seconds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import solid_clip, write_video
from snapaction.studio.app import create_studio_app
from snapaction.studio.live import LiveWindow, decode_jpeg

RED, BLUE = (200, 30, 30), (30, 30, 200)


def clip_bytes(tmp_path: Path, colour, seed: int, name: str = "c.mp4") -> bytes:
    return write_video(tmp_path / f"{seed}-{name}", solid_clip(colour, t=12, size=32, seed=seed), codec="libx264").read_bytes()


def post_clip(client, cls: str, data: bytes, name: str = "clip.mp4", source: str = "file"):
    return client.post(f"/api/classes/{cls}/clips?source={source}", files={"video": (name, data, "video/mp4")})


def events_until_done(client, after: int = -1) -> list[dict]:
    out = []
    with client.stream("GET", f"/api/train/events?after={after}") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if out[-1]["event"] in ("done", "failed"):
                    break
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_run):
    """(client, project folder, events) after training a run 'first' through the routes, stopped at its first step.

    Its live tests use conftest's `tiny_run`, offered as a run trained by the CLI (``--run``)."""
    tmp = tmp_path_factory.mktemp("studio")
    client = TestClient(create_studio_app(tmp / "project", run=tiny_run, cache_dir=str(tmp / "cache")))
    for cls, colour in (("red", RED), ("blue", BLUE)):
        assert client.post("/api/classes", json={"name": cls}).status_code == 201
        for seed in range(3):
            assert post_clip(client, cls, clip_bytes(tmp, colour, seed)).status_code == 201
    answer = client.post("/api/train", json={"model": "scratch", "epochs": 400, "batch_size": 4, "name": "first"})
    assert answer.status_code == 202, answer.text
    second = client.post("/api/train", json={"model": "scratch", "epochs": 1})
    assert second.status_code == 409 and "only one trains at a time" in second.json()["detail"]
    clip = client.get("/api/project").json()["classes"][0]["clips"][0]["name"]
    taken = client.delete(f"/api/classes/blue/clips/{clip}")  # training reads the clips: none may go meanwhile
    assert taken.status_code == 409 and "is training on these clips" in taken.json()["detail"]
    assert client.patch("/api/classes/blue", json={"name": "navy"}).status_code == 409
    events = []
    with client.stream("GET", "/api/train/events") as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["event"] == "step":
                    assert client.post("/api/train/stop").json() == {"run": "first", "stopping": True}
                if events[-1]["event"] in ("done", "failed"):
                    break
    return client, tmp / "project", events


def test_training_reports_epochs_stops_when_asked_and_writes_a_whole_run(trained):
    client, project, events = trained
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "done", events[-1]
    assert {"epoch": 1, "step": 1} == {k: events[kinds.index("step")][k] for k in ("epoch", "step")}
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1]  # the epoch in hand ends at once, and is validated
    assert 0 <= epochs[0]["val_accuracy"] <= 1 and epochs[0]["train_loss"] > 0 and epochs[0]["eta_s"] > 0
    assert epochs[0]["planned"] == 400
    done = events[-1]
    assert done["stopped_by"] == "asked" and done["epochs_run"] == len(epochs)
    assert events[0]["trainer"] == "video" and "pose" not in done
    assert done["kept"] == {k: v for k, v in epochs[done["best_epoch"] - 1].items() if k not in ("event", "id", "time", "eta_s")}
    run = project / "runs" / "first"
    for name in ("snapaction.json", "report.json", "metrics.csv", "curves.png", "eval-validation/confusion_matrix.png"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["epochs_run"] == len(epochs) and report["stopped_by"] == "asked"
    assert len((run / "metrics.csv").read_text().splitlines()) == len(epochs) + 1
    assert done["validation"]["clips"] >= 2  # the run's own validation clips, found by content
    judged = json.loads((run / "eval-validation" / "report.json").read_text())  # its picture says they chose the epoch
    assert judged["not_held_out"].startswith(f"Not held out: of these {done['validation']['clips']} clips, ")
    assert judged["not_held_out"].endswith("are its validation clips, which chose its kept epoch")
    # The replayed stream (a reopened tab) is the same events; nothing runs now, so Stop is a 409 sentence.
    assert [e["id"] for e in events_until_done(client)] == [e["id"] for e in events]
    assert client.post("/api/train/stop").status_code == 409


def test_the_page_gets_the_figures_of_the_epoch_the_run_keeps_not_of_the_last(tmp_path, monkeypatch):
    """The done event carries the metrics.csv row of the best epoch: the page labels and shows those figures."""
    import types

    import snapaction.studio.jobs as jobs
    import snapaction.training as training
    from snapaction.training.config import TrainResult

    def train(cfg, progress):
        for epoch, acc in enumerate((0.5, 1.0, 0.833), 1):
            progress({"event": "epoch", "epoch": epoch, "planned": 3, "train_loss": 1.0 / epoch, "val_loss": 0.5,
                      "val_accuracy": acc, "seconds": 0.1})
        return TrainResult(tmp_path, 2, 1.0, 0.5, 3, 0.3, [])

    monkeypatch.setattr(training, "train", train)
    monkeypatch.setattr(jobs, "judge_on_validation", lambda run_dir, data: None)
    cfg = types.SimpleNamespace(backbone="scratch", mode="full", epochs=3, max_minutes=None, data=str(tmp_path))
    job = jobs.TrainingJob("r", cfg)
    job.start()
    job.thread.join(10)
    done = job.events[-1]
    assert done["event"] == "done" and done["best_epoch"] == 2
    assert done["kept"] == {"epoch": 2, "planned": 3, "train_loss": 0.5, "val_loss": 0.5, "val_accuracy": 1.0, "seconds": 0.1}


def test_a_pose_run_reports_its_classifier_its_accuracy_and_its_clips_with_a_person(tmp_path, monkeypatch):
    """What the studio makes of a finished pose run (its training itself is tests/test_pose_run.py's, on real people)."""
    import types

    import snapaction.studio.jobs as jobs
    import snapaction.training as training
    from snapaction.pose.training import PoseReport
    from snapaction.run import RunInfo, write_train_report
    from snapaction.training.config import TrainResult

    run = tmp_path / "people"
    skipped = [(str(tmp_path / "data" / "wave" / "nobody.mp4"), "no person found in any of the 16 frames")]

    def train(cfg, progress):  # as training.pose.fit ends: no epochs, the report of both classifiers
        run.mkdir()
        RunInfo(["clap", "wave"], "pose", "full", "pose", {}, {}).save(run)
        result = TrainResult(run, 1, 0.75, float("nan"), 1, 2.5, skipped)
        report = PoseReport("temporal", {"stats": 0.5, "temporal": 0.75}, {"stats": 0.1, "temporal": 2.0}, 9, 4, 18)
        write_train_report(run, result, [], 10, 10, extra={"pose": report.to_dict()})
        return result

    monkeypatch.setattr(training, "train", train)
    monkeypatch.setattr(jobs, "judge_on_validation", lambda run_dir, data: None)
    job = jobs.TrainingJob("people", types.SimpleNamespace(backbone="pose", mode="full", epochs=30, max_minutes=None, data=""))
    job.start()
    job.thread.join(10)
    started, done = job.events[0], job.events[-1]
    assert started["trainer"] == "pose" and done["event"] == "done" and "kept" not in done
    assert done["pose"] == {"chosen": "temporal", "val_accuracy": {"stats": 0.5, "temporal": 0.75}, "note": "",
                            "train_clips": 9, "val_clips": 4, "clips_with_person": 13, "clips": 14}
    assert done["skipped"] == [{"path": skipped[0][0], "reason": skipped[0][1]}]
    assert job.stop() is None and "trains in one go" in job.events[-1]["text"]
    client = TestClient(create_studio_app(tmp_path / "p", run=run))
    project = client.get("/api/project").json()
    assert [(r["name"], r["trainer"]) for r in project["runs"]] == [("people", "pose")]
    options = {m["name"]: m["epochs"] for m in project["models"]}
    assert options == {"scratch": True, "pose": False, "folder": True}  # the page greys out Epochs for pose


def test_runs_and_their_figures_are_listed_and_served(trained):
    client, _, _ = trained
    runs = client.get("/api/project").json()["runs"]
    assert [r["name"] for r in runs] == ["run", "first"]  # the --run one first, then the project's
    first = runs[1]
    assert first["classes"] == ["blue", "red"] and first["epochs_run"] == 1
    assert set(first["figures"]) == {"curves", "confusion_matrix"}
    png = client.get(first["figures"]["confusion_matrix"])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/api/runs/first/figures/nope").status_code == 404
    assert "no run 'gone'" in client.get("/api/runs/gone/figures/curves").json()["detail"]


@pytest.mark.parametrize("body, status, words", [
    ({"model": "scratch", "name": "first"}, 409, "runs/first exists"),
    ({"model": "magic"}, 400, "not one the studio trains"),
    ({"model": "folder"}, 400, "needs the backbone folder"),
    ({"model": "folder", "backbone": "/no/such/folder", "finetune": "probe"}, 400, "/no/such/folder"),
    ({"model": "scratch", "epochs": 0}, 422, "epochs"),
    ({"model": "scratch", "name": "../up"}, 400, "run name '../up' cannot be used"),
])
def test_bad_training_requests_are_sentences(trained, body, status, words):
    client, _, _ = trained
    answer = client.post("/api/train", json=body)
    assert answer.status_code == status and words in answer.json()["detail"]


def test_training_needs_two_classes_with_clips(tmp_path):
    client = TestClient(create_studio_app(tmp_path / "p"))
    client.post("/api/classes", json={"name": "only"})
    answer = client.post("/api/train", json={"model": "scratch"})
    assert answer.status_code == 400 and "at least two classes" in answer.json()["detail"] and "only (0)" in answer.json()["detail"]
    assert client.get("/api/train/events").status_code == 404


def test_classes_are_made_renamed_and_deleted_into_an_undoable_trash(tmp_path):
    client = TestClient(create_studio_app(tmp_path / "p"))
    data = tmp_path / "p" / "data"
    assert client.post("/api/classes", json={"name": "wave"}).json() == {"name": "wave"}
    assert client.post("/api/classes", json={"name": "wave"}).status_code == 409
    for bad in ("", "a/b", "..", ".hidden", "x" * 65):
        answer = client.post("/api/classes", json={"name": bad})
        assert answer.status_code == 400 and "cannot be used" in answer.json()["detail"], bad
    assert client.patch("/api/classes/wave", json={"name": "wave hand"}).json() == {"name": "wave hand"}
    assert sorted(p.name for p in data.iterdir()) == ["wave hand"]
    assert client.patch("/api/classes/nope", json={"name": "x"}).status_code == 404
    post_clip(client, "wave hand", clip_bytes(tmp_path, RED, 0))
    trash = client.delete("/api/classes/wave hand").json()["trash"]
    assert list(data.iterdir()) == [] and client.get("/api/project").json()["classes"] == []
    assert client.post(f"/api/trash/{trash}/restore").json() == {"classes": ["wave hand"]}
    assert len(list((data / "wave hand").iterdir())) == 1
    assert client.post(f"/api/trash/{trash}/restore").status_code == 404
    assert client.post("/api/trash/..%2F..%2Fdata/restore").status_code == 404


def test_clips_are_added_listed_served_and_deleted_with_undo(tmp_path):
    client = TestClient(create_studio_app(tmp_path / "p"))
    client.post("/api/classes", json={"name": "red"})
    data = clip_bytes(tmp_path, RED, 1)
    first = post_clip(client, "red", data, source="webcam").json()
    assert first["clip"].startswith("webcam-") and first["clip"].endswith(".mp4") and first["frames"] == 12
    second = post_clip(client, "red", data, source="webcam").json()["clip"]
    assert second != first["clip"]  # same second, new name: nothing is overwritten
    listed = client.get("/api/project").json()["classes"][0]
    assert [c["name"] for c in listed["clips"]] == [first["clip"], second] and listed["usable"] == 2
    assert any("only 2 usable clips" in w for w in listed["warnings"])
    served = client.get(f"/api/classes/red/clips/{second}")
    assert served.status_code == 200 and served.content == data and served.headers["content-type"] == "video/mp4"
    assert client.get("/api/classes/red/clips/..%2F..%2Fsnapaction.json").status_code == 404
    # The thumbnail's poster: the clip's first frame, made by the server (headless Chromium painted no frame of
    # paused videos outside the window, so a third of the thumbnails were black).
    from PIL import Image

    poster = client.get(f"/api/classes/red/clips/{second}/poster")
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    picture = np.asarray(Image.open(io.BytesIO(poster.content)).convert("RGB"), np.float32)
    assert picture.shape == (32, 32, 3)  # a small clip is never upscaled
    assert np.abs(picture.mean((0, 1)) - RED).max() < 12  # the clip's red, not a black frame
    assert client.get(f"/api/classes/red/clips/{second}/poster").content == poster.content  # made once
    assert client.get("/api/classes/red/clips/nope.mp4/poster").status_code == 404
    trash = client.delete(f"/api/classes/red/clips/{second}").json()["trash"]
    assert (tmp_path / "p" / "trash" / trash / "red" / second).read_bytes() == data
    # Undo refuses to overwrite a clip that took the name meanwhile, and moves nothing.
    (tmp_path / "p" / "data" / "red" / second).write_bytes(b"new")
    assert client.post(f"/api/trash/{trash}/restore").status_code == 409
    (tmp_path / "p" / "data" / "red" / second).unlink()
    assert client.post(f"/api/trash/{trash}/restore").status_code == 200
    assert (tmp_path / "p" / "data" / "red" / second).read_bytes() == data


def test_a_dropped_file_keeps_its_own_name_made_safe_and_unique_in_its_class(tmp_path):
    import re

    client = TestClient(create_studio_app(tmp_path / "p"))
    for cls in ("red", "blue"):
        client.post("/api/classes", json={"name": cls})
    data = clip_bytes(tmp_path, RED, 1)
    sent = ["wave 1.mp4", "wave 1.mp4", "WAVE 1.MP4", "../../up/là-bas?.mp4", "C:\\me\\con.mp4", "???.mp4"]
    names = [post_clip(client, "red", data, name=n).json()["clip"] for n in sent]
    assert names[:5] == ["wave_1.mp4", "wave_1-2.mp4", "WAVE_1-3.mp4", "là-bas.mp4", "con_.mp4"]
    assert re.fullmatch(r"file-\d{8}-\d{6}\.mp4", names[5]), names[5]  # nothing usable left of the name
    assert post_clip(client, "blue", data, name="wave 1.mp4").json()["clip"] == "wave_1.mp4"  # unique within its class
    assert sorted(p.name for p in (tmp_path / "p" / "data" / "red").iterdir()) == sorted(names)
    from snapaction.files import current_umask

    mode = (tmp_path / "p" / "data" / "red" / names[0]).stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask()  # an ordinary file, not the private temporary one it was received as
    assert not (tmp_path / "up").exists() and not (tmp_path / "p" / "up").exists()
    recorded = post_clip(client, "red", data, name="webcam.webm", source="webcam").json()["clip"]
    assert re.fullmatch(r"webcam-\d{8}-\d{6}\.webm", recorded), recorded  # a recording is named by its time


def test_bad_uploads_get_the_same_sentences_as_serve_and_leave_nothing(tmp_path):
    client = TestClient(create_studio_app(tmp_path / "p", max_upload_mb=0.01))
    client.post("/api/classes", json={"name": "red"})
    cases = [
        (post_clip(client, "red", b"not a video\n" * 50), 422, "cannot be used as a video"),
        (post_clip(client, "red", b""), 400, "empty"),
        (post_clip(client, "red", b"x" * 20000), 413, "upload limit of 0.0 MB"),
        (client.post("/api/classes/red/clips", content=b"raw", headers={"content-type": "video/mp4"}), 415, "multipart/form-data"),
        (post_clip(client, "nope", b"x"), 404, "no class 'nope'"),
        (post_clip(client, "red", b"x", source="evil"), 422, "source"),
    ]
    for answer, status, words in cases:
        assert answer.status_code == status and words in answer.json()["detail"], (status, answer.text)
    assert list((tmp_path / "p" / "data" / "red").iterdir()) == []
    assert list((tmp_path / "p" / ".incoming").iterdir()) == []


def test_unusable_files_and_imbalance_are_warned_next_to_their_class(tmp_path):
    client = TestClient(create_studio_app(tmp_path / "p"))
    for cls in ("big", "small"):
        client.post("/api/classes", json={"name": cls})
    for seed in range(3):
        post_clip(client, "big", clip_bytes(tmp_path, RED, seed))
    post_clip(client, "small", clip_bytes(tmp_path, BLUE, 9))
    (tmp_path / "p" / "data" / "small" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    (tmp_path / "p" / "data" / "small" / "notes.txt").write_text("hi")
    small = {c["name"]: c for c in client.get("/api/project").json()["classes"]}["small"]
    assert small["usable"] == 1 and [c["problem"] is not None for c in small["clips"]] == [False, True]
    text = " ".join(small["warnings"])
    assert "broken.mp4 cannot be used: damaged or truncated MP4/MOV file" in text
    assert "3.0x fewer clips than the largest class (3)" in text and "notes.txt" in text
    answer = client.get("/api/classes/small/clips/broken.mp4/poster")
    assert answer.status_code == 422 and "clip 'broken.mp4' of 'small' has no picture to show: " in answer.json()["detail"]


def test_a_crash_leaves_no_partial_upload_behind(tmp_path):
    incoming = tmp_path / "p" / ".incoming"
    incoming.mkdir(parents=True)
    (incoming / "snapaction-upload-half.webm").write_bytes(b"half")
    TestClient(create_studio_app(tmp_path / "p"))
    assert list(incoming.iterdir()) == []


def jpeg(colour, size=(48, 64)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((*size, 3), colour, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_live_mode_predicts_from_a_window_of_frames(trained):
    client, _, _ = trained
    with client.websocket_connect("/api/live/run") as ws:  # conftest's tiny_run, as if trained by the CLI
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["classes"] == ["blue", "green", "red"] and 4 <= ready["fps"] <= 15
        ws.send_bytes(b"short")
        assert "binary message" in ws.receive_json()["detail"]
        ws.send_bytes(struct.pack("<d", 0.0) + b"not a jpeg")
        assert "JPEG or PNG" in ws.receive_json()["detail"]
        step = 1000 / ready["fps"]
        frames = int(ready["window_seconds"] * ready["fps"]) + 2
        for i in range(frames):
            ws.send_bytes(struct.pack("<d", 5000 + i * step) + jpeg(RED))
        got = ws.receive_json()
        assert got["type"] == "prediction", got
        assert set(got["probabilities"]) == {"blue", "green", "red"} and sum(got["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert got["label"] == max(got["probabilities"], key=got["probabilities"].get)
        assert 5000 < got["frame_time"] <= 5000 + (frames - 1) * step and got["frames"] >= 2
    with client.websocket_connect("/api/live/nope") as ws:
        assert "no run 'nope'" in ws.receive_json()["detail"]


def test_live_window_keeps_the_newest_seconds_and_restarts_on_a_new_stream():
    window = LiveWindow(1.0)
    for i in range(30):
        window.add(i * 0.1, i)
    assert window.values() == list(range(19, 30)) and window.span == pytest.approx(1.0) and window.ready
    window.add(0.5, "new")
    assert window.values() == ["new"] and not window.ready
    assert decode_jpeg(jpeg((10, 200, 30))).shape == (48, 64, 3)


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-clips"


def test_live_pose_window_gives_what_the_pose_model_gives_on_the_same_frames_as_a_clip(tmp_path):
    """The live path (a skeleton per frame as it arrives, then the window's) and the clip path agree exactly."""
    pytest.importorskip("mediapipe")
    if not (REAL / "apply_eye_makeup.avi").is_file():
        pytest.skip(f"the shared real clips are not at {REAL}")
    from PIL import Image

    from snapaction.pose import PosePipeline, PoseSettings, train_pose_classifier
    from snapaction.pose.features import pose_sequence
    from snapaction.pose.predictor import PosePredictor
    from snapaction.pose.synthetic import synthetic_set
    from snapaction.studio.live import LiveModel
    from snapaction.video import probe, read_frames

    settings = PoseSettings(frames=8, augment_copies=0, classifier="stats")
    sequences, labels = synthetic_set(["raise_arms", "lower_arms"], 2, np.random.default_rng(0))
    model, _ = train_pose_classifier([pose_sequence(s) for s in sequences], labels, [], [], ["raise_arms", "lower_arms"], settings)
    fps = 10
    predictor = PosePredictor(PosePipeline(model, settings), clip_seconds=8 / fps)
    info = probe(REAL / "apply_eye_makeup.avi")
    frames = read_frames(REAL / "apply_eye_makeup.avi", np.arange(0, 48, 6), info=info)  # (8, 240, 320, 3): a face and shoulders
    clip = write_video(tmp_path / "eight.mp4", frames, fps=fps)  # lossless: the clip path decodes these same pixels
    live = LiveModel(predictor)
    for i, frame in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        live.add_frame(i / fps, buf.getvalue())
    got = live.predict()
    expected = predictor.predict(clip)
    want = expected.probabilities
    assert got["frames"] == 8 and got["label"] == max(want, key=want.get)
    assert got["probabilities"] == pytest.approx(want, abs=1e-6)
    assert got["seen"] == expected.seen and got["seen"]["body"] == 8 and got["unsure"] == expected.unsure  # what it saw, too


def test_studio_command_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    from snapaction.cli import main

    assert main(["studio", str(tmp_path / "p"), "--run", str(tmp_path / "nope"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"run folder {tmp_path / 'nope'} does not exist" in err and err.count("\n") == 1


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_studio_command_warns_when_listening_beyond_this_machine(monkeypatch, capsys, tmp_path, host, warned):
    import snapaction.web.app as web

    served = []
    monkeypatch.setattr(web, "serve", lambda app, sock: served.append(app))
    from snapaction.cli import main

    assert main(["studio", str(tmp_path / "p"), "--host", host, "--port", "0"]) == 0
    out = capsys.readouterr()
    assert served and ("lets other machines on the network reach the studio" in out.err) == warned
    if warned:  # beyond loopback the printed address carries the token the app asks for
        token = served[0].user_middleware[0].kwargs["access"].token
        assert len(token) >= 32 and f"/?token={token}" in out.out and "needs the token" in out.err
    assert "SnapAction studio for" in out.out and (tmp_path / "p" / "data").is_dir()


def test_with_the_pose_model_chosen_class_cards_count_the_clips_it_saw_a_person_in(tmp_path):
    """From cached landmarks only (training fills them): nothing is extracted for the page."""
    from snapaction.pose.landmarks import LandmarkCache, landmark_dir
    from snapaction.pose.synthetic import synthetic_landmarks

    client = TestClient(create_studio_app(tmp_path / "project", cache_dir=str(tmp_path / "cache")))
    assert client.post("/api/classes", json={"name": "wave"}).status_code == 201
    names = [post_clip(client, "wave", clip_bytes(tmp_path, (40 * i, 90, 60), seed=i), name=f"c{i}.mp4").json()["clip"] for i in range(3)]
    folder = tmp_path / "project" / "data" / "wave"
    from snapaction.pose.settings import PoseSettings

    settings = PoseSettings()  # what a pose run trained from the studio uses
    cache = LandmarkCache(landmark_dir(tmp_path / "cache"), settings.frames, settings.decode_size, settings.hands)
    person = synthetic_landmarks("wave", np.random.default_rng(0), num_frames=settings.frames, missing=0.0)
    nobody = dataclasses.replace(person, present=np.zeros(settings.frames, bool))
    cache._write(cache.entry(folder / names[0]), person)
    cache._write(cache.entry(folder / names[1]), nobody)  # names[2]: never looked at
    card = client.get("/api/project?model=pose").json()["classes"][0]
    assert card["people"] == {"clips": 3, "looked_at": 2, "person": 1, "body": 1, "nobody": 1}
    assert "people" not in client.get("/api/project").json()["classes"][0]  # other models: no pose figures
    script = client.get("/static/studio.js").text
    assert "pose model: a person in" in script and "?model=pose" in script and "Left out " in script
