"""Shared fixtures: synthetic clips written by the tests themselves."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # Workers share the cores: torch threads beyond a worker's share only wait on each other (training in the
    # tests took ~30% more CPU with 2 threads per worker on 2 cores than with 1). Subprocesses inherit this.
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault("OMP_NUM_THREADS", _threads)
    if "torch" in __import__("sys").modules:  # imported by a plugin before this file: tell it directly
        __import__("torch").set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

if os.environ.get("PYTEST_XDIST_WORKER"):  # the suite runs on one worker per core (pyproject's addopts)
    _make_record = logging.getLogRecordFactory()

    def _escaped_record(*args, **kwargs):
        """Log records with a non-UTF-8 file name (the corpus has two) escaped: workers send their logs as UTF-8."""
        record = _make_record(*args, **kwargs)
        record.msg = record.getMessage().encode("utf-8", "backslashreplace").decode("utf-8")
        record.args = None
        return record

    logging.setLogRecordFactory(_escaped_record)


def _test_clients_speak_as_this_machine():
    """The local apps answer only to their own names (snapaction.web.guard): starlette's TestClient says
    "testserver" unless told otherwise, so in the tests it says 127.0.0.1, as a browser on this machine does.
    (Set when this file is imported: module- and session-scoped fixtures make clients before any function fixture.)"""
    from functools import partialmethod

    from starlette.testclient import TestClient

    TestClient.__init__ = partialmethod(TestClient.__init__, base_url="http://127.0.0.1")
    connect = TestClient.websocket_connect  # which joins its path to ws://testserver itself

    def websocket_connect(self, url, *args, **kwargs):
        return connect(self, url if "://" in url else "ws://127.0.0.1" + url, *args, **kwargs)

    TestClient.websocket_connect = websocket_connect


_test_clients_speak_as_this_machine()


# Files whose tests start processes, browsers or trainings, costliest first (measured with --durations). Workers take
# files in collection order: these go first, so that the two workers end together instead of one waiting while
# the other runs a long file that came last (xdist's own reordering, by number of tests, put the costliest last).
COSTLY_FIRST = ("test_crash_safety.py", "test_corpus.py", "test_two_processes.py", "test_demo_data.py",
                "test_studio_browser.py", "test_engines.py", "test_evaluate.py", "test_pose_run.py", "test_pretrain.py",
                "test_curve.py", "test_train.py", "test_mask.py", "test_web_browser.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(COSTLY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


# Kinds of CPU, for every choice that depends on the CPU: each test that takes `cpu` runs once as each, whatever
# this machine is (through SNAPACTION_CPU_FLAGS and SNAPACTION_BF16_TRAINING, the one place SnapAction reads them).
NATIVE_BF16 = "sse2 avx2 fma f16c avx512f avx512_vnni avx512_bf16"  # an AMD Zen 4 / Intel Xeon with AVX-512 BF16
CPUS = {
    "native-bf16": {"SNAPACTION_CPU_FLAGS": NATIVE_BF16, "SNAPACTION_BF16_TRAINING": "ok"},
    "native-bf16-wrong-gradients": {"SNAPACTION_CPU_FLAGS": NATIVE_BF16, "SNAPACTION_BF16_TRAINING": "broken"},
    "avx2-only": {"SNAPACTION_CPU_FLAGS": "sse2 avx2 fma f16c", "SNAPACTION_BF16_TRAINING": "ok"},  # bf16 emulated
}


def as_cpu(monkeypatch, kind: str) -> None:
    """Make SnapAction see the CPU `kind` of `CPUS` (subprocesses inherit it)."""
    for name, value in CPUS[kind].items():
        monkeypatch.setenv(name, value)


@pytest.fixture(params=sorted(CPUS))
def cpu(request, monkeypatch) -> str:
    """Run the test as if on each kind of CPU in `CPUS`; the kind's name."""
    as_cpu(monkeypatch, request.param)
    return request.param


def write_video(path: Path, frames: np.ndarray, fps: int = 25, codec: str = "libx264rgb", **options) -> Path:
    """Write `frames` (uint8 (T, H, W, C)) as a video; libx264rgb at qp 0 is lossless."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    opts = {"qp": "0"} if codec == "libx264rgb" else {}
    opts.update(options)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=opts)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture
def random_frames():
    """Factory for random uint8 (T, H, W, C) frames."""

    def make(t: int = 20, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)

    return make


VIDEOMAE_BASE_PROCESSOR = {
    # The shape of MCG-NJU/videomae-base's preprocessor_config.json, scaled down to 32 px.
    "crop_size": {"height": 32, "width": 32},
    "do_center_crop": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "image_processor_type": "VideoMAEImageProcessor",
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 32},
}


def tiny_videomae_config(**overrides):
    """A VideoMAE small enough to run in milliseconds: 4 frames of 32x32, 2 layers of width 32."""
    from transformers import VideoMAEConfig

    sizes = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        image_size=32, patch_size=16, num_frames=4, tubelet_size=2,
        decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=64,
    )
    sizes.update(overrides)
    return VideoMAEConfig(**sizes)


def save_tiny_videomae(folder: Path, classify_as: list[str] | None = None, seed: int = 0) -> Path:
    """Save a tiny random VideoMAE the way hub checkpoints are saved.

    Without `classify_as`: a pretraining checkpoint, like MCG-NJU/videomae-base.
    With it: a classification checkpoint with those labels, like a Kinetics-finetuned one.
    """
    import json

    import torch
    from transformers import VideoMAEForPreTraining, VideoMAEForVideoClassification

    torch.manual_seed(seed)
    if classify_as:
        config = tiny_videomae_config(
            id2label=dict(enumerate(classify_as)), label2id={c: i for i, c in enumerate(classify_as)}, use_mean_pooling=True
        )
        model = VideoMAEForVideoClassification(config)
    else:
        model = VideoMAEForPreTraining(tiny_videomae_config(use_mean_pooling=False))
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(VIDEOMAE_BASE_PROCESSOR))
    return folder


@pytest.fixture(scope="session")
def tiny_videomae(tmp_path_factory) -> Path:
    """Folder of a tiny random VideoMAE pretraining checkpoint with a processor config."""
    return save_tiny_videomae(tmp_path_factory.mktemp("tiny-videomae"))


def solid_clip(color, t: int = 12, size: int = 32, seed: int = 0, moving: str | None = None) -> np.ndarray:
    """uint8 (T, H, W, C): noisy frames of one colour, with a bright square moving up or down when asked."""
    rng = np.random.default_rng(seed)
    frames = np.empty((t, size, size, 3), np.uint8)
    frames[:] = np.asarray(color, np.uint8)
    frames = np.clip(frames.astype(int) + rng.integers(-20, 21, frames.shape), 0, 255).astype(np.uint8)
    if moving:
        for i in range(t):
            y = int((size - 8) * (i / (t - 1)))
            y = size - 8 - y if moving == "up" else y
            frames[i, y : y + 8, size // 2 - 4 : size // 2 + 4] = 255
    return frames


def write_colour_clips(root: Path) -> Path:
    """ROOT/<class>/*.mp4 with classes 'red' and 'blue', 6 clips each (two source groups per clip pair)."""
    for label, color in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        for i in range(6):
            write_video(root / label / f"v_{label}_g{i // 2:02d}_c{i % 2:02d}.mp4", solid_clip(color, seed=i), codec="libx264")
    return root


@pytest.fixture
def colour_clips(tmp_path) -> Path:
    """ROOT/<class>/*.mp4 with classes 'red' and 'blue', 6 clips each (two source groups per clip pair)."""
    return write_colour_clips(tmp_path / "colours")


# --- a real trained run, shared by the prediction, evaluation and web tests ---------

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def write_clip(path: Path, colour, seed: int = 0, t: int = 12) -> Path:
    """A tiny non-square clip (24x32) of one noisy colour with a square moving down: views and crops differ."""
    frames = solid_clip(colour, t=t, size=32, seed=seed, moving="down")[:, 4:28]
    return write_video(path, frames, codec="libx264")


def write_colour_dataset(root: Path, train: int = 4, test: int = 2) -> Path:
    """root/train/<colour>/ and root/test/<colour>/ of tiny clips."""
    for label, colour in COLOURS.items():
        for i in range(train + test):
            split = "train" if i < train else "test"
            write_clip(root / split / label / f"{label}_{i:02d}.mp4", colour, seed=i)
    return root


def train_tiny_run(root: Path) -> Path:
    """A scratch-preset run trained for 2 epochs on a few tiny clips (seconds): a real run folder, not a good model."""
    from snapaction.training import TrainConfig, train

    data = write_colour_dataset(root / "data")
    result = train(TrainConfig(data=str(data / "train"), out=str(root / "run"), backbone="scratch", epochs=2,
                               batch_size=4, cache_dir=str(root / "cache"), seed=0))
    return result.run_dir



@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A real run folder (scratch preset, 2 epochs on tiny colour clips); its data is in tiny_run.parent / 'data'.

    Trained once for the whole test session: the first xdist worker to need it trains it in the folder the workers
    share, under a lock; the others wait for it and use the same folder. Tests copy it before changing it."""
    import shutil

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # popen-gwN's parent: this session's
    done = shared / "tiny-run"
    with FileLock(str(shared / "tiny-run.lock")):
        if not (shared / "tiny-run.done").is_file():
            shutil.rmtree(done, ignore_errors=True)  # what a worker that crashed while training left
            train_tiny_run(done)  # in place: the run records its data's paths
            (shared / "tiny-run.done").touch()
    return done / "run"


# --- a browser and a live server, for the page tests ---------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


@pytest.fixture(scope="session")
def playwright_session():
    """Playwright, started once: its sync API allows one instance per thread, so every browser test shares it."""
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session):
    """One headless Chromium (Debian's) for every page test, with a fake camera; skips where it is not installed."""
    browser = playwright_session.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def live_server_for(tmp_path):
    """Start `snapaction serve`'s app for a run (or a predictor) on a free loopback port; returns its base URL."""
    from snapaction.predict import Predictor
    from snapaction.web.app import create_app

    servers = []

    def start(run_or_predictor, uploads: Path | None = None) -> str:
        predictor = Predictor.load(run_or_predictor) if isinstance(run_or_predictor, (str, Path)) else run_or_predictor
        uploads = uploads or tmp_path / "uploads"
        uploads.mkdir(exist_ok=True)
        return serve_in_thread(create_app(predictor, tmp_dir=uploads), servers)

    yield start
    stop_servers(servers)


def serve_in_thread(app, servers: list) -> str:
    """Serve `app` with uvicorn on a free loopback port in a daemon thread (appended to `servers`); returns its base URL."""
    import threading
    import time

    import uvicorn

    from snapaction.web.app import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    servers.append((server, thread, sock))
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def stop_servers(servers: list) -> None:
    """Stop what `serve_in_thread` started."""
    for server, thread, sock in servers:
        server.should_exit = True
        thread.join(10)
        sock.close()
