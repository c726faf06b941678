"""End to end: the studio in Debian's Chromium with a fake webcam, from no clips to live predictions.

Chromium's fake camera plays one y4m file per browser, so each class gets its
own browser (its y4m written here from demo-like clips: a bright square moving
over a red or a blue background), and live mode a third, whose y4m alternates
the two. Screenshots of each step go to tmp, and to docs/studio-*.png when
SNAPACTION_UPDATE_DOCS=1 (which trains 8 epochs instead of 1, so the live
screenshot shows a run that has learned the colours). On a CPU with native bf16,
add SNAPACTION_CPU_FLAGS="sse2 avx2 fma f16c": there the scratch preset's bf16
losses turned NaN after a few epochs of this tiny run, and it learned nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CHROMIUM, CHROMIUM_ARGS, serve_in_thread, solid_clip, stop_servers, write_video

pytestmark = pytest.mark.browser
WAIT_MS = 60_000
DOCS = Path(__file__).resolve().parents[1] / "docs"
RED, BLUE = (210, 40, 40), (40, 50, 210)
SIZE = (96, 128)  # (H, W) of the fake camera
UPDATE_DOCS = os.environ.get("SNAPACTION_UPDATE_DOCS") == "1"
EPOCHS = 8 if UPDATE_DOCS else 1  # the docs' screenshots show a run that has learned the two colours; the test needs one epoch


CAUGHT_UP = """() => {
    const video = document.querySelector('#live-camera'), canvas = document.createElement('canvas');
    canvas.width = 8; canvas.height = 8;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(video, 0, 0, 8, 8);
    const px = ctx.getImageData(0, 0, 8, 8).data;
    let red = 0, blue = 0;
    for (let i = 0; i < px.length; i += 4) { red += px[i]; blue += px[i + 2]; }
    const top = document.querySelector('#live-top').textContent.split(' ')[0];
    return top === (red > blue ? 'red' : 'blue') && !document.querySelector('#live-top').textContent.includes('unsure');
}"""
"""True when the top class is the colour the fake camera shows now (docs screenshots only)."""


def demo_frames(colour, seconds: float, fps: int, seed: int) -> np.ndarray:
    """uint8 (T, H, W, 3): noisy `colour` with a bright square moving down, the size of the fake camera."""
    t = int(seconds * fps)
    small = solid_clip(colour, t=t, size=32, seed=seed, moving="down")
    return np.repeat(np.repeat(small, 4, axis=2), 3, axis=1)  # (T, 96, 128, 3)


def write_y4m(path: Path, frames: np.ndarray, fps: int) -> Path:
    """A y4m (4:2:0, full-range BT.601 as 'C420jpeg' says) of RGB `frames`, as Chromium's fake camera reads."""
    rgb = frames.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    sub = lambda p: p.reshape(len(p), p.shape[1] // 2, 2, p.shape[2] // 2, 2).mean((2, 4))  # noqa: E731
    planes = [np.clip(p, 0, 255).round().astype(np.uint8) for p in (y, sub(u), sub(v))]
    h, w = frames.shape[1:3]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(len(frames)):
            f.write(b"FRAME\n" + b"".join(p[i].tobytes() for p in planes))
    return path


@pytest.fixture
def studio(tmp_path):
    from snapaction.studio.app import create_studio_app

    # What the rest of the suite has imported already: the test's time is then the studio's own.
    import accelerate, matplotlib.pyplot, sklearn.metrics  # noqa: E401, F401
    import snapaction.evaluate, snapaction.models.scratch, snapaction.predict, snapaction.training.loop  # noqa: E401, F401

    servers = []
    yield serve_in_thread(create_studio_app(tmp_path / "project", cache_dir=str(tmp_path / "cache")), servers), tmp_path / "project"
    stop_servers(servers)


def camera_page(playwright, y4m: Path, base: str):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium); .ci/run installs it")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={y4m}"])
    page = browser.new_context(permissions=["camera"], viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(base + "/")
    return browser, page


def shoot(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"studio-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    if UPDATE_DOCS:
        shutil.copyfile(shot, DOCS / shot.name)


def record_and_drop(page, cls: str, files: list[Path]) -> None:
    from playwright.sync_api import expect

    card = page.locator(f'.class-card[data-class="{cls}"]')
    with page.expect_response(lambda r: "/clips?source=webcam" in r.url) as answer:
        card.locator(".record-button").click()
    assert answer.value.status == 201, answer.value.text()
    card.locator("input[type=file]").set_input_files([str(f) for f in files])
    expect(page.locator(f'.class-card[data-class="{cls}"] .thumb')).to_have_count(1 + len(files), timeout=WAIT_MS)


def test_studio_from_no_clips_to_live_predictions(studio, tmp_path, playwright_session):
    from playwright.sync_api import expect

    base, project = studio
    fps = 10
    cams = {name: write_y4m(tmp_path / f"{name}.y4m", demo_frames(c, 2, fps, seed), fps)
            for name, c, seed in (("red", RED, 0), ("blue", BLUE, 1))}
    live = write_y4m(tmp_path / "live.y4m", np.concatenate([demo_frames(RED, 2.5, fps, 2), demo_frames(BLUE, 2.5, fps, 3)]), fps)
    dropped = {name: [write_video(tmp_path / f"{name}{i}.mp4", demo_frames(c, 1, 10, 10 + i), fps=10, codec="libx264")
                      for i in range(2)] for name, c in (("red", RED), ("blue", BLUE))}
    p = playwright_session
    # 1. Two classes, made from the keyboard alone.
    browser, page = camera_page(p, cams["red"], base)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    for name in ("red", "blue"):
        page.focus("#new-class-name")
        page.keyboard.type(name)
        page.keyboard.press("Enter")
        expect(page.locator(f'.class-card[data-class="{name}"]')).to_be_visible()
    page.fill("#record-seconds", "1")
    page.fill("#countdown-seconds", "0")
    shoot(page, tmp_path, "1-classes")
    # 2. Clips: one recorded from each class's camera, two dropped as files.
    record_and_drop(page, "red", dropped["red"])
    assert sorted(p.name for p in (project / "data" / "red").glob("*.mp4")) == ["red0.mp4", "red1.mp4"]  # their own names
    browser.close()
    browser, page = camera_page(p, cams["blue"], base)
    page.fill("#record-seconds", "1")
    page.fill("#countdown-seconds", "0")
    record_and_drop(page, "blue", dropped["blue"])
    assert len(list((project / "data" / "blue").glob("webcam-*.webm"))) == 1
    expect(page.locator('.class-card[data-class="blue"] .clip-count')).to_contain_text("3 usable of 3 clips")
    shoot(page, tmp_path, "2-clips")
    # Every thumbnail shows its clip's first frame, also outside the window: Chromium paints no frame of a paused
    # video it has not shown, so without the server's poster the clips below the fold were black in screenshots.
    page.set_viewport_size({"width": 1280, "height": 300})
    page.reload()
    page.wait_for_function("() => performance.getEntriesByType('resource').filter(e => e.name.includes('/poster')).length >= 6")
    below = page.screenshot(path=str(tmp_path / "below-the-fold.png"), full_page=True)
    boxes = page.eval_on_selector_all(".thumb video", "vs => vs.map(v => { const r = v.getBoundingClientRect(); "
                                      "return [r.x + scrollX, r.y + scrollY, r.width, r.height]; })")
    shown = np.asarray(Image.open(io.BytesIO(below)).convert("RGB"), np.float32)
    colours = [shown[int(y) + 4:int(y + h) - 4, int(x) + 4:int(x + w) - 4].mean((0, 1)) for x, y, w, h in boxes]
    assert len(colours) == 6 and all(c.max() > 120 for c in colours), colours  # red or blue, not black
    page.set_viewport_size({"width": 1280, "height": 900})
    # Every control is reachable with Tab: recording, each clip (it plays on focus), training, live mode.
    reached = []
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("(e => e.id || e.className || e.tagName)(document.activeElement)"))
    assert {"primary record-button", "delete", "VIDEO", "model", "train-button", "live-run"} <= set(reached), reached
    # 3. Train a tiny run and watch it finish; its curves and confusion matrix appear.
    if page.locator("#model option[value=pose]:not([disabled])").count():  # the pose model has no epochs or budget
        page.select_option("#model", "pose")
        expect(page.locator("#epochs")).to_be_disabled()
        expect(page.locator("#max-minutes")).to_be_disabled()
        expect(page.locator("#one-go-note")).to_be_visible()
        page.select_option("#model", "scratch")
    expect(page.locator("#epochs")).to_be_enabled()
    expect(page.locator("#one-go-note")).to_be_hidden()
    page.fill("#epochs", str(EPOCHS))
    page.fill("#max-minutes", "")
    page.fill("#run-name", "tiny")
    page.click("#train-button")
    expect(page.locator("#train-status")).to_contain_text("Done: tiny", timeout=WAIT_MS)
    # The boxes show the epoch the run keeps (its best), labelled, not the last epoch's figures.
    best = json.loads((project / "runs" / "tiny" / "report.json").read_text())
    kept = next(r for r in csv.DictReader(open(project / "runs" / "tiny" / "metrics.csv")) if int(r["epoch"]) == best["best_epoch"])
    boxes = dict(page.eval_on_selector_all("#train-figures div", "ds => ds.map(d => [d.dataset.figure, d.innerText])"))
    assert boxes["epoch"] == f"Kept epoch\n{best['best_epoch']} of {EPOCHS}"
    assert boxes["loss"] == f"Training loss at epoch {best['best_epoch']}\n{float(kept['train_loss']):.3f}"
    assert boxes["accuracy"] == f"Validation accuracy at epoch {best['best_epoch']}\n{100 * best['val_accuracy']:.1f}%"
    expect(page.locator("#run-figures img")).to_have_count(2)
    page.wait_for_function("[...document.querySelectorAll('#run-figures img')].every(i => i.complete && i.naturalWidth > 0)")
    sizes = page.eval_on_selector_all("#run-figures img", "is => is.map(i => [i.naturalWidth, i.clientWidth, i.naturalHeight, i.clientHeight])")
    assert all(shown == own for own, shown, *_ in sizes) and all(h == own_h for _, _, own_h, h in sizes), sizes  # never scaled up
    shoot(page, tmp_path, "3-trained")
    # A pose run's events (as tests/test_studio_api.py checks the server sends them): its classifier, validation
    # accuracy and clips with a person, no epochs.
    page.evaluate("""() => {
        onTrainEvent({event: "started", id: 100, run: "gym", backbone: "pose", trainer: "pose", epochs: 30});
        onTrainEvent({event: "done", id: 101, run: "gym", best_epoch: 1, val_accuracy: 0.75, epochs_run: 1, stopped_by: "epochs",
                      seconds: 2.5, skipped: [{path: "/p/data/wave/broken.mp4", reason: "a text file, not a video"}],
                      validation: null, pose: {chosen: "temporal", val_accuracy: {stats: 0.5, temporal: 0.75}, note: "",
                      train_clips: 9, val_clips: 4, clips_with_person: 13, clips: 14}});
    }""")
    boxes = dict(page.eval_on_selector_all("#train-figures div", "ds => ds.map(d => [d.dataset.figure, d.innerText])"))
    assert boxes == {"classifier": "Classifier kept, over stats 50.0%\ntemporal", "accuracy": "Validation accuracy\n75.0%",
                     "people": "Clips with a person\n13 of 14", "time": "Took\n2.5 s"}, boxes
    status = page.inner_text("#train-status")
    assert status.startswith("Done: gym, the pose model: the temporal classifier is kept, validation accuracy 75.0% (stats 50.0%), "
                             "on 9 training and 4 validation clips with a person") and "epoch" not in status, status
    assert page.inner_text("#train-skipped") == "Left out (could not be used):\nwave/broken.mp4: a text file, not a video"
    browser.close()
    # 4. Live mode, with a camera that alternates the two classes: the bars move.
    browser, page = camera_page(p, live, base)
    expect(page.locator("#live-run")).to_have_value("tiny")
    page.click("#live-button")
    expect(page.locator("#live-bars li")).to_have_count(2)
    expect(page.locator("#live-timing")).to_contain_text("predictions/s", timeout=WAIT_MS)
    seen, deadline = set(), time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        seen.add(tuple(page.eval_on_selector_all("#live-bars li", "els => els.map(e => e.dataset.probability)")))
        page.wait_for_timeout(150)
    assert len(seen) >= 3, seen
    for probs in seen:
        assert sum(map(float, probs)) == pytest.approx(1, abs=1e-3)
    assert page.inner_text("#live-top").split(" ")[0] in ("red", "blue")
    if UPDATE_DOCS:  # the bars trail the camera by a window: show a moment when they have caught up
        page.wait_for_function(CAUGHT_UP, timeout=WAIT_MS)
        page.wait_for_timeout(120)  # the bars' width transition
    shoot(page, tmp_path, "4-live")
    page.click("#live-button")  # Stop live: the note no longer says what it watches
    expect(page.locator("#live-button")).to_have_text("Start live")
    expect(page.locator("#live-note")).to_have_text(re.compile("^Stopped: nothing is sent or watched"))
    assert page.inner_text("#live-timing") == ""
    # Readable on a phone: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    browser.close()
    outside = [u for u in requested if not u.startswith((base, "blob:", "data:", "ws://127.0.0.1"))]
    assert requested and not outside, outside
    assert (project / "runs" / "tiny" / "eval-validation" / "confusion_matrix.png").is_file()
