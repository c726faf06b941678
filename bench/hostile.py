"""What one hostile file costs on every path: a 23 KB MP4 whose H.264 SPS claims 16000x16000 frames.

Each path runs as its own process, on a dataset of two classes of good clips
with the hostile file among them: ``data check``, ``predict`` (on the file
alone), ``train`` (one epoch of the scratch preset), and ``serve`` (the
server's peak memory before and after the file is uploaded). Prints per path
the outcome, seconds and peak memory, and the same path on the dataset
without the file as the reference (the ratio is what the file adds).

Run: ``python bench/hostile.py RUN`` (a trained run folder, for predict and serve).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PEAK = """
import resource, sys
from snapaction.cli import main
code = main(sys.argv[1:])
print(f"PEAK_MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}", file=sys.stderr)
sys.exit(code)
"""


def cli(*args: str) -> tuple[int, float, int, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, timeout=900)
    peak = int(re.search(r"PEAK_MB (\d+)", done.stderr).group(1)) if "PEAK_MB" in done.stderr else -1
    return done.returncode, time.monotonic() - started, peak, done.stdout + done.stderr


def serve_peak(run: Path, upload: Path, warm_up: Path) -> tuple[int | None, float, float]:
    """(status of the upload, server peak MB after a warm-up upload of `warm_up`, after the upload)."""
    import httpx

    from serve_load import free_port, rss_mb, wait_ready

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "snapaction", "serve", str(run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(server, base)
        httpx.post(base + "/api/predict", files={"video": ("clip.mp4", warm_up.read_bytes(), "video/mp4")}, timeout=300)
        _, before = rss_mb(server.pid)
        status = httpx.post(base + "/api/predict", files={"video": ("clip.mp4", upload.read_bytes(), "video/mp4")}, timeout=300).status_code
        _, after = rss_mb(server.pid)
        return status, before, after
    finally:
        server.terminate()
        server.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()

    from conftest import write_clip
    from corpus import good_clip, mp4_with_sps_size

    work = Path(tempfile.mkdtemp(prefix="snapaction-hostile-"))
    hostile = work / "sps_16000.mp4"
    hostile.write_bytes(mp4_with_sps_size(good_clip(work / "seed.mp4").read_bytes(), 16000, 16000))
    print(f"the hostile file: {hostile.stat().st_size / 1024:.0f} KB, SPS claims 16000x16000")
    clean, dirty = work / "clean", work / "dirty"
    for k in range(4):
        for name, colour in (("red", (220, 40, 40)), ("blue", (40, 40, 220))):
            write_clip(clean / name / f"{name}{k}.mp4", colour, seed=k)
    shutil.copytree(clean, dirty)
    shutil.copy(hostile, dirty / "red" / hostile.name)

    rows = []
    for path, make in (
        ("data check", lambda d: ["data", "check", str(d), "--json"]),
        ("predict", lambda d: ["predict", str(args.run), str(d / "red")]),
        ("train", lambda d: ["train", str(d), "--backbone", "scratch", "--epochs", "1", "--out", str(work / f"run-{d.name}"),
                             "--cache-dir", str(work / f"cache-{d.name}")]),
    ):
        ref = cli(*make(clean))
        got = cli(*make(dirty))
        said = next((line.strip() for line in got[3].splitlines() if "megapixels" in line), "(not mentioned)")
        rows.append((path, got, ref, said))
    status, before, after = serve_peak(args.run, hostile, clean / "red" / "red0.mp4")
    print(f"{'path':<11} {'exit':>4} {'seconds':>8} {'peak MB':>8}   reference (no hostile file): seconds, peak MB, ratio of peaks")
    for path, (code, seconds, peak, _), (_, ref_s, ref_peak, _), said in rows:
        print(f"{path:<11} {code:>4} {seconds:>8.1f} {peak:>8}   {ref_s:.1f} s, {ref_peak} MB, x{peak / max(ref_peak, 1):.2f}")
        print(f"            says: {said[:200]}")
    print(f"{'serve':<11} {status:>4} {'':>8} {after:>8.0f}   peak after a warm-up upload {before:.0f} MB, x{after / before:.2f}")
    try:
        print(f"            says: {json.loads(httpx_detail(args.run, hostile))['detail'][:200]}")
    except Exception:  # noqa: BLE001  the figure above is what matters
        pass
    shutil.rmtree(work, ignore_errors=True)


def httpx_detail(run: Path, upload: Path) -> str:
    from fastapi.testclient import TestClient

    from snapaction.predict import load_predictor
    from snapaction.web.app import create_app

    with TestClient(create_app(load_predictor(run))) as client:
        return client.post("/api/predict", files={"video": ("clip.mp4", upload.read_bytes(), "video/mp4")}).text


if __name__ == "__main__":
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    main()
