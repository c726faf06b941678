"""End to end: the page in Debian's Chromium, driven by Playwright, against a live uvicorn server.

Two tests: a clip chosen from disk, and a recording from Chromium's fake
webcam (MediaRecorder's WebM, with no duration in its header, decoded by the
server).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

WAIT_MS = 60_000  # generous: CI machines may be busy training at the same time
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "web-screenshot.png"

pytestmark = pytest.mark.browser  # Chromium comes from conftest's `browser`, which skips where it is not installed

# The page is driven by a real trained run (conftest's `tiny_run`). Set this to
# False to drive it with the mean-colour double of test_web_api.py instead, whose
# answers the test then also checks exactly.
SERVE_REAL_RUN = True


@pytest.fixture
def predictor(request):
    if SERVE_REAL_RUN:
        from snapaction.predict import Predictor

        return Predictor.load(request.getfixturevalue("tiny_run"))
    from test_web_api import MeanColourPredictor

    return MeanColourPredictor()


@pytest.fixture
def live_server(predictor, live_server_for, tmp_path):
    """(base URL, uploads folder) of the app served by uvicorn on a free loopback port, in a thread."""
    uploads = tmp_path / "uploads"
    return live_server_for(predictor, uploads), uploads


def demo_clip(path: Path) -> Path:
    """4 s at 25 fps, 320x240: a dark square moving over red for 2 s, then over blue."""
    from conftest import write_video

    t = np.arange(100)
    frames = np.empty((100, 240, 320, 3), np.uint8)
    frames[:50] = (215, 40, 40)
    frames[50:] = (40, 60, 210)
    for i in t:
        x = int(20 + 2.4 * (i % 50) * 2)
        frames[i, 90:150, x : x + 60] = (30, 30, 30)
    return write_video(path, frames, fps=25, codec="libx264", preset="ultrafast")


def test_page_classifies_an_uploaded_clip(live_server, browser, tmp_path):
    from playwright.sync_api import expect

    base, uploads = live_server
    clip = demo_clip(tmp_path / "demo.mp4")
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"not a video\n" * 100)

    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(WAIT_MS)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(base + "/")
        info = page.request.get(base + "/api/info").json()
        expect(page.locator("#run-info")).to_contain_text(", ".join(info["classes"]), timeout=WAIT_MS)

        # Keyboard: Tab reaches the file chooser and the webcam button.
        focused = []
        for _ in range(6):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id"))
        assert "choose-button" in focused and "record-button" in focused, focused

        with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
            page.set_input_files("#file-input", str(clip))
        result = answer.value.json()
        assert answer.value.status == 200, result
        expect(page.locator("#status")).to_contain_text("Done", timeout=WAIT_MS)

        # The DOM shows what the API answered: top class, one bar per class, sorted.
        assert page.inner_text("#top-label") == result["label"]
        rows = page.eval_on_selector_all(
            "#bars li",
            """els => els.map(e => ({
                name: e.dataset.class,
                text: e.querySelector('.bar-value').textContent,
                fill: e.querySelector('.bar-fill').getBoundingClientRect().width,
                track: e.querySelector('.bar-track').getBoundingClientRect().width}))""",
        )
        ranked = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])
        assert [r["name"] for r in rows] == [name for name, _ in ranked]
        assert sorted(r["name"] for r in rows) == sorted(info["classes"])
        for row, (_, p) in zip(rows, ranked):
            assert row["text"] == f"{100 * p:.1f}%"
            assert row["fill"] / row["track"] == pytest.approx(p, abs=0.01)
        assert page.get_attribute("#clip", "src").startswith("blob:")

        # A video longer than one model window gets its timeline.
        assert result["windows"], "the demo clip should be longer than one window"
        segments = page.eval_on_selector_all("#timeline .segment", "els => els.map(e => e.dataset.label)")
        assert segments == [w["label"] for w in result["windows"]]
        if not SERVE_REAL_RUN:  # the double's answer is known: red, then blue
            assert segments[0] == "red" and segments[-1] == "blue"

        # The browser can play the clip it sent (H.264, yuv420p).
        page.wait_for_function("document.querySelector('#clip').readyState >= 2")
        page.evaluate(
            """() => new Promise(done => {
                const video = document.querySelector('#clip');
                video.addEventListener('seeked', done, {once: true});
                video.currentTime = 1.0;
            })"""
        )
        page.wait_for_timeout(400)  # let the bars' width transition finish
        shot = tmp_path / "web-screenshot.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("SNAPACTION_UPDATE_DOCS") == "1":
            DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(shot, DOCS_SCREENSHOT)

        # Readable on a phone: nothing wider than the screen.
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(tmp_path / "web-screenshot-phone.png"), full_page=True)

        # A bad file gets the server's sentence on the page, and no stale result.
        page.set_input_files("#file-input", str(not_video))
        expect(page.locator("#error")).to_contain_text("cannot be used as a video", timeout=WAIT_MS)
        expect(page.locator("#result")).to_be_hidden(timeout=WAIT_MS)

        # Nothing was fetched from anywhere but this server (no CDN).
        outside = [u for u in requested if not u.startswith((base, "blob:", "data:"))]
        assert requested and not outside, outside
    finally:
        page.context.close()
    assert list(uploads.iterdir()) == []


def test_page_records_the_webcam_and_classifies_the_recording(live_server, browser):
    from playwright.sync_api import expect

    base, uploads = live_server
    try:
        page = browser.new_context(permissions=["camera"]).new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(base + "/")
        page.fill("#record-seconds", "1")
        with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
            page.click("#record-button")
        assert answer.value.status == 200, answer.value.text()
        result = answer.value.json()
        assert 0.5 < result["duration"] < 2.5  # about the 1 s asked for
        expect(page.locator("#status")).to_contain_text("Done", timeout=WAIT_MS)
        assert page.inner_text("#top-label") == result["label"]
        assert page.locator("#bars li").count() == len(result["probabilities"])
        if not SERVE_REAL_RUN:  # Chromium's fake camera shows a mostly green picture
            assert result["label"] == "green"
    finally:
        page.context.close()
    assert list(uploads.iterdir()) == []
