"""Load test for `snapaction serve`: concurrent clients mixing good clips with bad uploads.

    python bench/serve_load.py RUN [--clients 4] [--seconds 30] [--corpus] [--rss-every 60]
    python bench/serve_load.py --test-double [--clients 4] [--seconds 30]
    python bench/serve_load.py RUN --corpus        (tests/corpus.py's bad inputs mixed in too)

Starts the server as its own process on 127.0.0.1 (a free port; loopback
only), waits for /healthz, then runs CLIENTS threads for SECONDS, each
sending a random mix of good clips (short, and long with a timeline) and bad
uploads (empty, not a video, truncated, over the size cap; with --corpus also
every uploadable file of the tests' bad-input corpus, each expected to get a
prediction or a 4xx sentence as tests/test_corpus.py says). Prints requests/s,
p50/p95 latency per kind, the count of wrong status codes and of server
errors (goal: 0 for both), uploads left in the server's temporary folder
(goal: 0), and the server's memory at the end against after warm-up.

RUN is a trained run folder (`snapaction demo` writes one). --test-double
serves the mean-colour test double of tests/test_web_api.py instead, to
measure the web layer alone; its figures say nothing about a model's speed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from snapaction.web.upload import UPLOAD_PREFIX

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
MAX_CLIENTS = 32
MAX_SECONDS = 4 * 3600
CAP_MB = 1  # the server's upload cap during the bench, so an oversize upload stays cheap

# kind -> (weight in the mix, expected status)
KINDS = {
    "good": (50, 200),
    "good-long": (10, 200),
    "empty": (10, 400),
    "not-video": (10, 422),
    "truncated": (10, 422),
    "oversize": (10, 413),
}


def add_corpus(folder: Path, uploads: dict[str, bytes]) -> None:
    """Every regular file of tests/corpus.py as a kind of its own: weight 4, the status its outcome calls for."""
    from corpus import write_corpus

    expected = {"use": (200,), "reject": (400, 422), "either": (200, 422)}
    for entry in write_corpus(folder / "corpus"):
        if entry.path.is_file() and not entry.path.is_symlink():
            kind = f"c:{entry.name.encode('unicode_escape').decode()}"[:24]
            KINDS[kind] = (4, expected[entry.outcome])
            uploads[kind] = entry.path.read_bytes()


def make_uploads(folder: Path) -> dict[str, bytes]:
    """The bodies of every kind of upload: synthetic H.264 clips and broken files."""
    sys.path.insert(0, str(TESTS))
    from conftest import write_video

    def clip(name: str, seconds: float) -> bytes:
        n = int(seconds * 25)
        frames = np.empty((n, 128, 160, 3), np.uint8)
        frames[: n // 2] = (215, 40, 40)
        frames[n // 2 :] = (40, 60, 210)
        for i in range(n):  # a dark square crossing the frame
            x = int((i * 4) % 120)
            frames[i, 40:80, x : x + 40] = 30
        return write_video(folder / name, frames, fps=25, codec="libx264").read_bytes()

    long_clip = clip("long.mp4", 8.0)
    return {
        "good": clip("short.mp4", 1.6),
        "good-long": long_clip,
        "empty": b"",
        "not-video": b"this is a text file, not a video\n" * 500,
        "truncated": long_clip[: len(long_clip) // 2],
        "oversize": os.urandom(int(1.5 * CAP_MB * 2**20)),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of process `pid` in MB, from /proc (Linux)."""
    values = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def start_server(args, port: int, tmp: Path) -> subprocess.Popen:
    env = dict(os.environ, TMPDIR=str(tmp))  # the server's uploads land here, so leftovers can be counted (torch writes there too)
    if args.test_double:
        command = [sys.executable, __file__, "--serve-test-double", str(port)]
    else:
        command = [sys.executable, "-m", "snapaction", "serve", str(args.run), "--port", str(port)]
    command += ["--max-upload-mb", str(CAP_MB)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(server: subprocess.Popen, base: str, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}:\n{server.stderr.read()}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /healthz within {timeout:.0f} s")


def client(base: str, uploads: dict[str, bytes], deadline: float, seed: int, results: list) -> None:
    """Send random uploads until `deadline`; append (kind, status or None, seconds) to `results`."""
    import httpx

    rng = random.Random(seed)
    kinds = list(KINDS)
    weights = [KINDS[k][0] for k in kinds]
    with httpx.Client(base_url=base, timeout=120) as http:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            started = time.perf_counter()
            try:
                status = http.post("/api/predict", files={"video": (f"{kind}.mp4", uploads[kind], "video/mp4")}).status_code
            except httpx.HTTPError:
                status = None
            results.append((kind, status, time.perf_counter() - started))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(results: list, elapsed: float, clients: int) -> int:
    """Print the figures; return the number of failures (wrong statuses, server errors, no answers)."""
    print(f"{len(results)} requests from {clients} clients in {elapsed:.1f} s: {len(results) / elapsed:.1f} requests/s")
    print(f"{'kind':<24} {'sent':>6} {'expected':>8} {'wrong':>6} {'p50 ms':>8} {'p95 ms':>8}")
    wrong = server_errors = busy = unanswered = 0
    for kind, (_, expected) in KINDS.items():
        expected = expected if isinstance(expected, tuple) else (expected,)
        rows = [r for r in results if r[0] == kind]
        seconds = [s * 1000 for _, status, s in rows if status in expected]
        bad = sum(1 for _, status, _ in rows if status not in (*expected, 503))
        wrong += bad
        shown = "/".join(map(str, expected))
        print(f"{kind:<24} {len(rows):>6} {shown:>8} {bad:>6} {percentile(seconds, 50):>8.0f} {percentile(seconds, 95):>8.0f}")
    statuses = [status for _, status, _ in results]
    server_errors = sum(1 for s in statuses if s is not None and s >= 500 and s != 503)
    busy = statuses.count(503)
    unanswered = statuses.count(None)
    everything = [s * 1000 for _, status, s in results if status is not None]
    print(f"all answered: p50 {percentile(everything, 50):.0f} ms, p95 {percentile(everything, 95):.0f} ms")
    print(f"wrong status codes: {wrong} (goal 0)")
    print(f"server errors (5xx but 503): {server_errors} (goal 0)")
    print(f"no answer (connection failed): {unanswered} (goal 0)")
    print(f"busy (503, queue full): {busy}")
    return wrong + server_errors + unanswered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", help="a trained run folder to serve")
    parser.add_argument("--test-double", action="store_true", help="serve the mean-colour test double instead of a run")
    parser.add_argument("--clients", type=int, default=4, help=f"concurrent clients, 1..{MAX_CLIENTS} (default: 4)")
    parser.add_argument("--seconds", type=float, default=30, help=f"how long to send, 1..{MAX_SECONDS} (default: 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", action="store_true", help="mix in every uploadable file of the tests' bad-input corpus")
    parser.add_argument("--rss-every", type=float, default=60, help="seconds between RSS samples of the server (default: 60)")
    args = parser.parse_args(argv)
    if bool(args.run) == args.test_double:
        parser.error("give a RUN folder or --test-double (one of them)")
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--clients must be 1..{MAX_CLIENTS} and --seconds 1..{MAX_SECONDS}")

    with tempfile.TemporaryDirectory(prefix="snapaction-bench-") as work:
        work = Path(work)
        server_tmp = work / "server-tmp"
        server_tmp.mkdir()
        uploads = make_uploads(work)
        if args.corpus:
            add_corpus(work, uploads)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(args, port, server_tmp)
        try:
            wait_ready(server, base)
            import httpx

            for kind in ("good", "good-long"):  # warm-up: model loaded, first inference done
                httpx.post(base + "/api/predict", files={"video": ("w.mp4", uploads[kind], "video/mp4")}, timeout=300)
            rss_start, _ = rss_mb(server.pid)
            print(f"server: pid {server.pid} on {base}, serving {'the test double' if args.test_double else args.run}")
            results: list = []
            started = time.monotonic()
            deadline = started + args.seconds
            threads = [
                threading.Thread(target=client, args=(base, uploads, deadline, args.seed + i, results))
                for i in range(args.clients)
            ]
            for t in threads:
                t.start()
            samples = [(0.0, rss_start)]  # (seconds since the start, MB): does the server's memory level off?
            while time.monotonic() + args.rss_every < deadline:
                time.sleep(args.rss_every)
                samples.append((time.monotonic() - started, rss_mb(server.pid)[0]))
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            rss_end, rss_peak = rss_mb(server.pid)
            failures = report(results, elapsed, args.clients)
            left = sorted(p.name for p in server_tmp.iterdir() if p.name.startswith(UPLOAD_PREFIX))
            print(f"uploads left in the server's temporary folder: {len(left)} (goal 0)")
            print(
                f"server memory (RSS): {rss_start:.0f} MB after warm-up, {rss_end:.0f} MB at the end "
                f"({rss_end - rss_start:+.0f} MB, x{rss_end / rss_start:.2f}); peak {rss_peak:.0f} MB"
            )
            samples.append((elapsed, rss_end))
            print("server RSS over time: " + ", ".join(f"{t / 60:.1f} min {mb:.0f} MB" for t, mb in samples))
            settled = [mb for t, mb in samples if t >= 300]  # after the first 5 minutes
            if len(settled) >= 2:
                print(f"growth after the first 5 minutes: {settled[-1] - settled[0]:+.0f} MB, "
                      f"x{settled[-1] / settled[0]:.2f} (goal <= x1.10)")
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
    return 1 if failures or left else 0


def serve_test_double(port: int, max_upload_mb: float) -> None:
    """The server process of --test-double: the app over tests/test_web_api.py's MeanColourPredictor."""
    sys.path.insert(0, str(TESTS))
    from test_web_api import MeanColourPredictor

    from snapaction.web.app import bind_socket, create_app, serve

    serve(create_app(MeanColourPredictor(), max_upload_mb=max_upload_mb), bind_socket("127.0.0.1", port), log_level="warning")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-test-double":
        serve_test_double(int(sys.argv[2]), float(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
