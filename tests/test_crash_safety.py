"""A training run killed at any moment (SIGKILL, no chance to tidy up) resumes to the same result as a run never stopped.

Mixup is on, so the resumed run must also replay the mixing draws exactly."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from snapaction.cli import main
from test_train import read_metrics, write_cut_faststart_clip

ARGS = ["--backbone", "scratch", "--epochs", "2", "--batch-size", "4", "--num-frames", "4", "--cache-frames", "8",
        "--lr", "3e-3", "--mixup-alpha", "0.4", "--mixup-prob", "1", "--patience", "0", "--precision", "no", "--checkpoint-minutes", "0"]

# A fresh interpreter that imports what training needs once, then forks a child per run it is sent (one JSON
# line: mode, log file, CLI arguments), says the child's pid, and once it ends its exit status (-9 when killed).
# A forked child is a process of its own, killed as any other; it only skips the second import (~10 s of CPU).
# With "between-renames" the child kills itself in the middle of replacing its second checkpoint: the old
# checkpoint moved aside, the new one (complete) not yet in its place.
LAUNCHER = """
import json, os, signal, sys
import torch
torch.set_num_threads(int(sys.argv[1]))  # the parent's: float sums, and so the weights, depend on the thread count
import snapaction.run as run
from snapaction.cli import main
import accelerate, snapaction.data.dataset, snapaction.models.backbone, snapaction.models.scratch, snapaction.training.loop  # noqa
print("ready", flush=True)
for line in sys.stdin:
    mode, log, argv = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1), os.dup2(fd, 2)
        if mode == "between-renames":
            real, calls = run.replace_dir, []
            def replace_dir(src, dst):
                if dst.name == "checkpoint":
                    calls.append(dst)
                if len(calls) == 2 and dst.name == "checkpoint":
                    os.replace(dst, dst.with_name("checkpoint.old"))
                    os.kill(os.getpid(), signal.SIGKILL)
                real(src, dst)
            run.replace_dir = replace_dir
        try:
            code = main(argv)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 99
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class Launcher:
    """The LAUNCHER process: `start` a run, `wait` for its exit status."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(torch.get_num_threads())], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.read(120) == "ready"

    def read(self, timeout: float) -> str:
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"no answer from the launcher in {timeout} s"
        line = self.proc.stdout.readline()
        assert line, f"the launcher stopped (exit status {self.proc.wait(10)})"
        return line.strip()

    def start(self, mode: str, log: Path, argv: list[str]) -> int:
        self.proc.stdin.write(json.dumps([mode, str(log), argv]) + "\n")
        self.proc.stdin.flush()
        return int(self.read(30))

    def wait(self, timeout: float = 120) -> int:
        return int(self.read(timeout))

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:  # a run that a failed test left going
            self.proc.kill()
            self.proc.wait(30)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def launcher():
    launcher = Launcher()
    yield launcher
    launcher.close()


def run_args(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["train", str(data), "--out", str(out), "--cache-dir", str(cache), *ARGS, *extra]


def outcome(run_dir: Path) -> tuple[list[dict], dict]:
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in read_metrics(run_dir)]
    return rows, load_file(run_dir / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def colour_clips_module(tmp_path_factory):
    """Three colour classes, and a clip that probes well but fails to decode (so every run here also
    shows that such a clip is listed, and that a resumed run still lists it)."""
    from conftest import write_colour_dataset

    data = write_colour_dataset(tmp_path_factory.mktemp("data"), train=3, test=0) / "train"
    write_cut_faststart_clip(data / "red" / "cut.mp4")
    return data


@pytest.fixture(scope="module")
def whole_run(colour_clips_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("snapaction").addHandler(handler)
    try:
        assert main(run_args(colour_clips_module, out, out.parent / "cache")) == 0
    finally:
        logging.getLogger("snapaction").removeHandler(handler)
    return out, records


@pytest.fixture(scope="module")
def whole(whole_run):
    return outcome(whole_run[0])


def same(a, b) -> None:
    (rows_a, weights_a), (rows_b, weights_b) = a, b
    assert rows_a == rows_b
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert (weights_a[key] == weights_b[key]).all(), key


def test_killed_between_the_renames_of_a_checkpoint_resumes_to_the_same_run(whole, colour_clips_module, launcher, tmp_path, capsys):
    out, log = tmp_path / "run", tmp_path / "killed.log"
    launcher.start("between-renames", log, run_args(colour_clips_module, out, tmp_path / "cache"))
    assert launcher.wait() == -signal.SIGKILL, log.read_text()[-2000:]
    assert not (out / "checkpoint").exists() and (out / "checkpoint.old").is_dir()  # the worst moment
    assert main(["train", "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "put the checkpoint finished just before the stop in place" in said
    assert not list(out.glob(".checkpoint-*")) and not (out / "checkpoint.old").exists()
    same(outcome(out), whole)
    # the clip that failed before the stop is still listed: the checkpoint carries the list
    listed = [s["path"] for s in json.loads((out / "snapaction.json").read_text())["skipped"]]
    assert str(colour_clips_module / "red" / "cut.mp4") in listed


def test_killed_at_a_random_moment_resumes_to_the_same_run(whole, colour_clips_module, launcher, tmp_path):
    out = tmp_path / "run"
    pid = launcher.start("random", tmp_path / "killed.log", run_args(colour_clips_module, out, tmp_path / "cache"))
    deadline = time.monotonic() + 120
    while not (out / "metrics.csv").exists() and alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(float(os.environ.get("SNAPACTION_TEST_KILL_DELAY", "0")) or 0.05 + 0.3 * (time.time() % 1))
    if alive(pid):  # (the launcher reaps it the moment it ends)
        os.kill(pid, signal.SIGKILL)
    launcher.wait(30)
    assert main(["train", "--out", str(out), "--resume"]) == 0
    same(outcome(out), whole)


def test_stopped_before_its_first_checkpoint_resume_starts_it_over(whole, colour_clips_module, tmp_path, monkeypatch, capsys):
    import snapaction.run as run

    def die(*args, **kwargs):  # the first epoch's weights are written; the stop comes before its checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "save_checkpoint", die)
    out = tmp_path / "run"
    assert main(run_args(colour_clips_module, out, tmp_path / "cache")) == 130
    monkeypatch.undo()
    assert (out / "snapaction.json").is_file() and not (out / "checkpoint").exists()
    assert main(run_args(colour_clips_module, out, tmp_path / "cache")) == 2  # a fresh run refuses the folder...
    assert "already holds a run: pass --resume" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume"]) == 0  # ...and --resume is the way on
    assert "stopped before its first checkpoint" in capsys.readouterr().out
    same(outcome(out), whole)


def test_a_clip_failing_mid_training_is_listed_in_the_run_and_not_decoded_again(whole_run, colour_clips_module):
    out, records = whole_run
    cut = colour_clips_module / "red" / "cut.mp4"
    assert sum(str(cut) in r.getMessage() and "from now on" in r.getMessage() for r in records) == 1  # 2 epochs, one try
    for name in ("snapaction.json", "report.json"):
        listed = {s["path"]: s["reason"] for s in json.loads((out / name).read_text())["skipped"]}
        assert "failed to decode during training" in listed[str(cut)], name
