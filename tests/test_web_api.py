"""The web app's JSON API, through FastAPI's test client, over a test double of `Predictor`.

`MeanColourPredictor` implements the predictor contract with a real, checkable
computation (class probabilities from a clip's mean colour, read through
`snapaction.video` like the real model), so these tests check status codes,
JSON shape, probabilities, temporary files and queueing without training a
model. It is also what the browser test and bench/serve_load.py serve until
a trained run is used there.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from snapaction.errors import ClipError, RunError, SnapActionError
from snapaction.data.sampling import Sampling, view_indices
from snapaction.video import probe, read_frames

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from snapaction.web.app import STATIC, bind_socket, create_app, is_loopback  # noqa: E402
from snapaction.predict import Prediction, Window  # noqa: E402
from snapaction.web.upload import safe_suffix  # noqa: E402

COLOURS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (20, 30, 220)}


# --- the test double ---------------------------------------------------------


class MeanColourPredictor:
    """The `Predictor` contract with probabilities from the clip's mean colour: softmax(8 * mean RGB / 255).

    Unreadable clips raise `ClipError` from `snapaction.video`, as the real one
    does. Counts calls and how many run at once; `gate`, when set, holds every
    `predict` until it is released; `delay` makes each one take that long.
    """

    classes = ["red", "green", "blue"]
    num_frames = 8
    window = 1.0

    def __init__(self):
        self.sampling = Sampling(num_frames=self.num_frames)
        self.gate: threading.Event | None = None
        self.delay = 0.0
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.paths: list[Path] = []
        self._lock = threading.Lock()

    def info(self) -> dict:
        return {
            "run": "test-double-mean-colour",
            "classes": list(self.classes),
            "backbone": "mean colour (test double)",
            "num_frames": self.num_frames,
            "metrics": {"val_accuracy": 1.0},
        }

    def _probabilities(self, frames: np.ndarray) -> dict[str, float]:
        mean = frames.reshape(-1, 3).mean(0) / 255.0  # (3,) RGB
        e = np.exp(8.0 * (mean - mean.max()))
        return dict(zip(self.classes, (e / e.sum()).tolist()))

    def predict(self, clip, views: int = 1) -> Prediction:
        started = time.perf_counter()
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.paths.append(Path(clip))
        try:
            if self.gate is not None:
                self.gate.wait(30)
            time.sleep(self.delay)
            info = probe(clip)
            indices = view_indices(info.num_frames, self.sampling, views)  # (views, T)
            frames = read_frames(clip, indices.ravel(), size=32, info=info)
            probs = self._probabilities(frames)
            label = max(probs, key=probs.get)
            return Prediction(label, probs, views, time.perf_counter() - started)
        finally:
            with self._lock:
                self.active -= 1

    def window_seconds(self, path) -> float:
        return self.window

    def timeline(self, path, stride_s: float | None = None) -> list[Window]:
        info = probe(path)
        stride_s = stride_s or self.window / 2
        windows = []
        for start in np.arange(0.0, max(info.duration - self.window, 0.0) + 1e-9, stride_s):
            first = int(round(start * info.fps))
            count = max(1, min(info.num_frames - first, int(round(self.window * info.fps))))
            frames = read_frames(path, first + np.arange(count), size=32, info=info)
            probs = self._probabilities(frames)
            end = min(start + self.window, info.duration)
            windows.append(Window(float(start), float(end), max(probs, key=probs.get), probs))
        return windows


# --- clips -------------------------------------------------------------------


def solid(name: str, frames: int, h: int = 48, w: int = 64) -> np.ndarray:
    """`frames` frames of one colour, uint8 (T, H, W, C)."""
    return np.broadcast_to(np.array(COLOURS[name], np.uint8), (frames, h, w, 3)).copy()


def write_clip(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """A browser-playable H.264 clip (yuv420p, even size)."""
    from conftest import write_video

    return write_video(path, frames, fps=fps, codec="libx264")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    out = {
        "red": write_clip(folder / "red.mp4", solid("red", 20)),  # 0.8 s: shorter than one 1 s window
        "long": write_clip(folder / "red-then-blue.mp4", np.concatenate([solid("red", 50), solid("blue", 50)])),
    }
    out["not_video"] = folder / "notes.mp4"
    out["not_video"].write_bytes(b"these are my notes, not a video\n" * 200)
    data = out["long"].read_bytes()
    out["truncated"] = folder / "truncated.mp4"
    out["truncated"].write_bytes(data[: len(data) // 2])
    return out


# --- app fixtures ------------------------------------------------------------


@pytest.fixture
def uploads(tmp_path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


@pytest.fixture
def double() -> MeanColourPredictor:
    return MeanColourPredictor()


def make_client(predictor, uploads: Path, **kwargs) -> TestClient:
    return TestClient(create_app(predictor, tmp_dir=uploads, **kwargs), raise_server_exceptions=False)


@pytest.fixture
def client(double, uploads):
    with make_client(double, uploads) as c:
        yield c


def post(client: TestClient, path: Path | None = None, content: bytes | None = None, name: str = "clip.mp4", params=None):
    data = path.read_bytes() if path is not None else content
    return client.post("/api/predict", files={"video": (name, data, "video/mp4")}, params=params)


def assert_sentence(response, status: int, *words: str) -> str:
    """A JSON error with one human sentence: no stack trace, no server path."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail[0].isupper() and detail.endswith("."), detail
    assert "Traceback" not in detail and "/tmp" not in detail and "uploads" not in detail, detail
    for word in words:
        assert word in detail.lower(), detail
    return detail


def no_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- the happy path ------------------------------------------------------------


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_info_lists_classes_backbone_frames_and_metrics(client, double):
    info = client.get("/api/info").json()
    assert info["classes"] == double.classes
    assert info["backbone"] == "mean colour (test double)"
    assert info["num_frames"] == 8
    assert info["metrics"] == {"val_accuracy": 1.0}
    assert info["run"] == "test-double-mean-colour"
    assert info["max_upload_mb"] == 200


def test_openapi_schema_documents_the_api(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/info", "/healthz"} <= set(schema["paths"])
    predict = schema["paths"]["/api/predict"]["post"]
    assert "video" in predict["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(predict["responses"])
    # The interactive docs pages would load scripts from a CDN: they are off.
    assert client.get("/docs").status_code == 404


def test_page_and_its_assets_are_served_from_this_server_only(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    html = (STATIC / "index.html").read_text()
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert links and all(link.startswith(("/", "#", "data:")) for link in links), links
    css = (STATIC / "style.css").read_text()
    assert "url(" not in css and "@import" not in css
    js = (STATIC / "app.js").read_text()
    fetched = re.findall(r"fetch\(([^,)]*)", js)
    assert fetched and all(arg.strip().startswith('"/') for arg in fetched), fetched


def test_predict_returns_every_class_summing_to_one(client, double, clips, uploads):
    response = post(client, clips["red"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] == "red"
    assert list(body["probabilities"]) == double.classes
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    expected = double.predict(clips["red"]).probabilities
    assert body["probabilities"] == pytest.approx(expected)
    assert body["probabilities"]["red"] > 0.6
    top, second = sorted(body["probabilities"].values(), reverse=True)[:2]
    assert body["margin"] == pytest.approx(top - second) and body["unsure"] is (top - second < 0.15)
    assert body["views"] == 1
    assert body["seconds"] > 0
    assert body["duration"] == pytest.approx(0.8, abs=0.05)
    assert body["window_seconds"] == 1.0
    assert body["windows"] is None  # shorter than one window: no timeline
    assert no_files(uploads) == []


def test_views_are_passed_to_the_model(client, double, clips):
    body = post(client, clips["red"], params={"views": 3}).json()
    assert body["views"] == 3 and body["label"] == "red"
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)


@pytest.mark.parametrize("views", ["0", "11", "many"])
def test_bad_views_is_a_sentence(client, clips, uploads, views):
    assert_sentence(post(client, clips["red"], params={"views": views}), 422, "views")
    assert no_files(uploads) == []


def test_long_video_gets_a_timeline_of_windows(client, clips, uploads):
    body = post(client, clips["long"]).json()
    assert body["duration"] == pytest.approx(4.0, abs=0.05)
    windows = body["windows"]
    assert len(windows) == 7  # 1 s windows every 0.5 s over 4 s
    assert [w["label"] for w in windows[:2]] == ["red", "red"]
    assert [w["label"] for w in windows[-2:]] == ["blue", "blue"]
    for w in windows:
        assert 0 <= w["start"] < w["end"] <= body["duration"] + 1e-6
        assert sum(w["probabilities"].values()) == pytest.approx(1.0)
    assert body["label"] in ("red", "blue")
    assert post(client, clips["long"], params={"timeline": "false"}).json()["windows"] is None
    assert no_files(uploads) == []


def test_a_long_timeline_is_bounded(client, clips, monkeypatch):
    monkeypatch.setattr("snapaction.web.app.MAX_WINDOWS", 4)  # 4 s / 4: the stride grows to 1 s
    windows = post(client, clips["long"]).json()["windows"]
    assert [w["start"] for w in windows] == [0.0, 1.0, 2.0, 3.0]


def test_upload_exactly_at_the_cap_is_accepted(double, clips, uploads):
    size = clips["red"].stat().st_size
    with make_client(double, uploads, max_upload_mb=size / 2**20) as client:
        assert post(client, clips["red"]).status_code == 200
    with make_client(double, uploads, max_upload_mb=(size - 1) / 2**20) as client:
        assert_sentence(post(client, clips["red"]), 413, "limit")
    assert no_files(uploads) == []


# --- bad input -------------------------------------------------------------------


def test_empty_upload_is_400(client, uploads, double):
    assert_sentence(post(client, content=b""), 400, "empty")
    assert no_files(uploads) == [] and double.calls == 0


def test_non_video_file_is_422(client, clips, uploads, double):
    detail = assert_sentence(post(client, clips["not_video"]), 422, "cannot be used as a video")
    assert "snapaction-upload" not in detail
    assert no_files(uploads) == [] and double.calls == 0


def test_truncated_video_is_422(client, clips, uploads, double):
    assert_sentence(post(client, clips["truncated"]), 422, "cannot be used as a video")
    assert no_files(uploads) == [] and double.calls == 0


def test_upload_over_the_cap_is_413(double, uploads):
    with make_client(double, uploads, max_upload_mb=0.05) as client:  # 52 KB
        detail = assert_sentence(post(client, content=b"\0" * 200_000), 413, "upload limit")
    assert "--max-upload-mb" in detail
    assert no_files(uploads) == [] and double.calls == 0


def test_upload_over_the_cap_without_a_declared_length_is_stopped_while_streaming(double, uploads):
    boundary = "snapactiontestboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()

    def body():  # chunked: the server cannot know the size before reading
        yield head
        for _ in range(40):
            yield b"\0" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    with make_client(double, uploads, max_upload_mb=0.05) as client:
        response = client.post(
            "/api/predict", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
    assert_sentence(response, 413, "upload limit")
    assert "content-length" not in response.request.headers
    assert no_files(uploads) == [] and double.calls == 0


def test_form_without_a_file_is_400(client, uploads):
    response = client.post("/api/predict", files={"comment": (None, b"no video here")})
    assert_sentence(response, 400, "no file", "'video'")
    assert no_files(uploads) == []


def test_body_that_is_not_a_form_is_415(client, clips):
    response = client.post("/api/predict", content=clips["red"].read_bytes(), headers={"content-type": "video/mp4"})
    assert_sentence(response, 415, "multipart/form-data")


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data", b"--x\r\n"),  # no boundary
        ("multipart/form-data; boundary=abc", b"this is not a multipart body at all"),
    ],
)
def test_malformed_form_is_400(client, uploads, content_type, body):
    response = client.post("/api/predict", content=body, headers={"content-type": content_type})
    assert_sentence(response, 400, "multipart")
    assert no_files(uploads) == []


@pytest.mark.parametrize("name", ["../../escape.mp4", "/etc/passwd", "..\\..\\x.mp4", "clip.sh", "a" * 300 + ".mp4", ""])
def test_uploaded_file_names_are_never_used_as_paths(client, double, clips, uploads, name):
    response = post(client, clips["red"], name=name)
    assert response.status_code == 200, response.text
    used = double.paths[-1]
    assert used.parent == uploads
    assert re.fullmatch(r"snapaction-upload-\w+\.(mp4|upload)", used.name), used.name
    assert not (uploads.parent / "escape.mp4").exists() and not (uploads.parent.parent / "escape.mp4").exists()
    assert no_files(uploads) == []


def test_safe_suffix_only_returns_known_video_suffixes():
    assert safe_suffix("clip.MP4") == ".mp4"
    assert safe_suffix(b"webcam.webm") == ".webm"
    assert safe_suffix("../../x.sh") == ".upload"
    assert safe_suffix("no-extension") == ".upload"
    assert safe_suffix(None) == ".upload"


def test_clip_error_from_the_model_is_422_without_server_paths(double, clips, uploads):
    def broken(clip, views=1):
        raise ClipError(clip, f"decoding failed in {clip} (frame 3)")

    double.predict = broken
    with make_client(double, uploads) as client:
        detail = assert_sentence(post(client, clips["red"]), 422, "decoding failed")
    assert str(uploads) not in detail
    assert no_files(uploads) == []


def test_model_failure_is_a_json_500_without_a_stack_trace(double, clips, uploads):
    def crash(clip, views=1):
        raise RuntimeError("CUDA out of memory at /secret/path")

    double.predict = crash
    with make_client(double, uploads) as client:
        detail = assert_sentence(post(client, clips["red"]), 500, "server log")
    assert "secret" not in detail and "CUDA" not in detail
    assert no_files(uploads) == []


# --- queueing -------------------------------------------------------------------


def test_concurrent_requests_all_get_answers_one_inference_at_a_time(double, clips, uploads):
    double.delay = 0.1
    app = create_app(double, tmp_dir=uploads)
    queued = []
    with TestClient(app) as client, ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(post, client, clips["red"]) for _ in range(6)]
        while not all(f.done() for f in futures):
            queued.append(app.state.queue.pending)
            time.sleep(0.005)
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 6
    assert {r.json()["label"] for r in responses} == {"red"}
    assert max(queued) >= 3, "the requests should have waited in the queue together"
    assert double.calls == 6 and double.max_active == 1
    assert no_files(uploads) == []


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_full_queue_answers_503_and_the_queued_requests_still_finish(double, clips, uploads):
    double.gate = threading.Event()
    app = create_app(double, tmp_dir=uploads, queue_size=2)
    queue = app.state.queue
    with TestClient(app, raise_server_exceptions=False) as client, ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(post, client, clips["red"]) for _ in range(2)]
        wait_until(lambda: queue.pending == 2 and double.active == 1)
        refused = post(client, clips["red"])
        assert_sentence(refused, 503, "busy")
        assert refused.headers["retry-after"] == "5"
        assert len(no_files(uploads)) == 2  # the two queued uploads; the refused one is already gone
        double.gate.set()
        assert [f.result().status_code for f in waiting] == [200, 200]
    assert queue.pending == 0 and double.max_active == 1
    assert no_files(uploads) == []


def test_bad_settings_are_refused(double, uploads):
    with pytest.raises(SnapActionError, match="max_upload_mb must be more than 0, got 0"):
        create_app(double, max_upload_mb=0)
    with pytest.raises(SnapActionError, match="queue_size must be at least 1, got 0"):
        create_app(double, queue_size=0)


# --- the serve command ------------------------------------------------------------


def serve_args(run: str, *options: str) -> argparse.Namespace:
    from snapaction.commands import serve

    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    return parser.parse_args([run, *options])


def fake_predict_module(monkeypatch, load) -> None:
    """Stand in for `snapaction.predict` with a Predictor whose `load` is `load`."""
    module = types.ModuleType("snapaction.predict")
    module.Predictor = types.SimpleNamespace(load=load)
    monkeypatch.setitem(sys.modules, "snapaction.predict", module)


def test_serve_refuses_to_start_without_a_valid_run(monkeypatch, tmp_path):
    from snapaction.commands import serve

    def load(run_dir, device=None, **how):  # how: --engine, --precision, --seek
        raise RunError(f"{run_dir} is not a run folder: it has no snapaction.json; pass a folder written by training")

    fake_predict_module(monkeypatch, load)
    started = []
    monkeypatch.setattr("snapaction.web.app.serve", lambda *a, **k: started.append(a))
    with pytest.raises(RunError, match="does not exist"):  # said from the folder alone, before any loading
        serve.run(serve_args(str(tmp_path / "nothing")))
    run_file_only = tmp_path / "run"
    write_run_file(run_file_only)
    with pytest.raises(RunError, match="is not a run folder"):  # the predictor's own refusal
        serve.run(serve_args(str(run_file_only)))
    assert started == []


def test_serve_refuses_a_folder_that_is_not_a_run_with_the_real_predictor(tmp_path):
    pytest.importorskip("snapaction.predict")
    from snapaction.commands import serve

    with pytest.raises(RunError):
        serve.run(serve_args(str(tmp_path)))


def write_run_file(folder: Path) -> Path:
    """A run folder's snapaction.json only: enough for the command's first check, not a model."""
    from snapaction.run import RunInfo

    RunInfo(classes=["red", "blue"], backbone="scratch", finetune="full", weights="model",
            sampling={"num_frames": 4}, preprocessing={}).save(folder)
    return folder


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True)])
def test_serve_warns_when_listening_beyond_this_machine(monkeypatch, capsys, host, warned, tmp_path):
    from snapaction.commands import serve

    fake_predict_module(monkeypatch, lambda run_dir, device=None, **how: MeanColourPredictor())
    served = []

    def fake_serve(app, sock):
        served.append(sock.getsockname())
        sock.close()

    monkeypatch.setattr("snapaction.web.app.serve", fake_serve)
    assert serve.run(serve_args(str(write_run_file(tmp_path / "x")), "--host", host, "--port", "0")) == 0
    out, err = capsys.readouterr()
    assert len(served) == 1
    assert ("warning: listening on 0.0.0.0" in err) == warned
    if warned:
        assert "--host 127.0.0.1" in err
    assert "Serving the run in " in out and " at http://" in out


def test_port_in_use_is_one_sentence():
    taken = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(SnapActionError, match=r"cannot listen on http://127.0.0.1:\d+: .*pick another with --port"):
            bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.20", "example.org"]))


def test_the_page_can_show_the_runs_own_curves_and_confusion_matrix(tiny_run, tmp_path):
    import shutil

    from snapaction.cli import main
    from snapaction.predict import Predictor

    run = shutil.copytree(tiny_run, tmp_path / "run")
    for earlier in run.glob("eval-*"):  # other tests evaluate the shared run: start from none
        shutil.rmtree(earlier)
    with make_client(Predictor.load(run), tmp_path) as client:
        figures = client.get("/api/info").json()["figures"]
        assert figures == {"curves": "/api/figures/curves"}  # no eval yet: no confusion matrix
        png = client.get(figures["curves"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content == (run / "curves.png").read_bytes()
        missing = client.get("/api/figures/snapaction.json")
        assert missing.status_code == 404 and "has no figure 'snapaction.json'" in missing.json()["detail"]
    assert main(["eval", str(run), str(tiny_run.parent / "data" / "test")]) == 0
    with make_client(Predictor.load(run), tmp_path) as client:
        figures = client.get("/api/info").json()["figures"]
        assert figures["confusion_matrix"] == "/api/figures/confusion_matrix"
        assert client.get(figures["confusion_matrix"]).content == (run / "eval-test" / "confusion_matrix.png").read_bytes()
