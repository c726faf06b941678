"""Fuzz the clip reader for N minutes: mutated small clips of five containers through probe + read_frames.

Each input runs in a worker process that the bench watches: an input that
raises anything but SnapAction's own `ClipError`, returns frames of the wrong
shape, outlasts twice its time bound (the worker is killed and restarted:
a hang), or lifts the worker's memory above the bound is a failure, and the
input is saved under ``--save`` (default bench/.cache/fuzz-failures) with what
went wrong beside it. The seeds and mutations are tests/fuzzing.py's, the
same the test suite runs a few of every time.

Prints inputs tried, inputs per second, outcomes (frames / ClipError), failures
by kind, and the worker's peak memory. Run:
``python bench/fuzz.py [--minutes 10] [--timeout 5] [--memory-mb 1024] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def worker(conn, timeout: float) -> None:
    import resource

    from fuzzing import check

    while True:
        path = conn.recv()
        if path is None:
            return
        problem = check(Path(path), timeout)
        conn.send((problem, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024))


class Watched:
    """A worker process and the pipe to it; restarted after a hang or a crash."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.start()

    def start(self) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.get_context("spawn").Process(target=worker, args=(child, self.timeout), daemon=True)
        self.proc.start()

    def run(self, path: Path) -> tuple[str | None, int]:
        self.conn.send(str(path))
        if self.conn.poll(2 * self.timeout + 30):  # the first input also pays the worker's imports
            try:
                return self.conn.recv()
            except EOFError:
                pass
        code = self.proc.exitcode
        self.proc.kill()
        self.proc.join()
        self.start()
        return ("hang: no answer within twice the time bound" if code is None else f"worker died (exit code {code})"), 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds one input may take (the reader's own bound)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="worker peak memory above which an input is a failure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=Path(__file__).parent / ".cache" / "fuzz-failures")
    args = parser.parse_args()

    from fuzzing import mutate, write_seeds

    work = Path(tempfile.mkdtemp(prefix="snapaction-fuzz-"))
    seeds = [(p, p.read_bytes()) for p in write_seeds(work / "seeds")]
    rng = random.Random(args.seed)
    watched = Watched(args.timeout)
    tried, outcomes, failures, peak = 0, Counter(), Counter(), 0
    started = time.monotonic()
    end = started + args.minutes * 60
    while time.monotonic() < end:
        path, data = rng.choice(seeds)
        bad = work / f"input{path.suffix}"
        bad.write_bytes(mutate(data, rng, rng.choice(seeds)[1]))
        problem, rss = watched.run(bad)
        tried += 1
        if problem is None and rss > args.memory_mb:
            problem = f"memory: worker peak {rss} MB"
        peak = max(peak, rss)
        if rss > args.memory_mb:  # start afresh so one input's peak is not charged to the next
            watched.proc.kill()
            watched.start()
        if problem is None:
            outcomes["handled"] += 1
            continue
        kind = problem.split(":")[0]
        failures[kind] += 1
        args.save.mkdir(parents=True, exist_ok=True)
        saved = args.save / f"{kind.replace(' ', '_')}-{tried}{path.suffix}"
        saved.write_bytes(bad.read_bytes())
        saved.with_suffix(saved.suffix + ".txt").write_text(problem + "\n")
        print(f"failure {sum(failures.values())}: {problem} (saved {saved})", flush=True)
    watched.conn.send(None)
    seconds = time.monotonic() - started
    print(f"inputs tried: {tried} in {seconds / 60:.1f} min ({tried / seconds:.1f}/s), seeds: {', '.join(p.name for p, _ in seeds)}")
    print(f"handled (frames or ClipError): {outcomes['handled']}, failures: {sum(failures.values())}"
          + (f" ({dict(failures)})" if failures else ""))
    print(f"worker peak memory: {peak} MB (bound {args.memory_mb} MB)")


if __name__ == "__main__":
    main()
