"""A mistake is said at once: wrong paths, folders that are not runs, a busy port, a missing backbone or extra
are reported before any model library is imported (the imports are what take seconds), in one sentence."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

PROBE = """
import contextlib, io, json, sys
from snapaction.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    results.append([status, err.getvalue()])
heavy = sorted(m for m in ("torch", "transformers", "accelerate", "mediapipe") if m in sys.modules)
print("RESULT " + json.dumps([results, heavy]))
"""


def first_errors(*commands: list[str], env: dict | None = None) -> tuple[list[tuple[int, str]], list[str]]:
    """[(exit status, stderr)] of each `snapaction ARGV`, run one after another in one fresh interpreter,
    and the heavy modules imported by then (one interpreter: starting one costs half a second)."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps([list(c) for c in commands])], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})
    line = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, done.stdout[-2000:] + done.stderr[-2000:]
    results, heavy = json.loads(line[0][len("RESULT "):])
    return [tuple(r) for r in results], heavy


@pytest.fixture(scope="module")
def not_a_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("not-a-run")
    (folder / "notes.txt").write_text("x")
    return folder


WRONG_PATHS = [
    (["train", "{missing}", "--backbone", "scratch"], "does not exist"),
    (["train", "--out", "{missing}", "--resume"], "nothing to resume"),
    (["predict", "{not_a_run}", "clip.mp4"], "is not a SnapAction run folder"),
    (["eval", "{not_a_run}", "{not_a_run}"], "is not a SnapAction run folder"),
    (["eval", "{run}", "{missing}"], "does not exist"),
    (["serve", "{missing}"], "does not exist"),
]


def test_wrong_paths_are_said_before_any_model_library_loads(tmp_path, not_a_run, tiny_run):
    commands = [[a.format(missing=tmp_path / "missing", not_a_run=not_a_run, run=tiny_run) for a in argv] for argv, _ in WRONG_PATHS]
    results, heavy = first_errors(*commands)
    assert heavy == []
    for (argv, said), (status, err) in zip(WRONG_PATHS, results):
        assert status == 2 and said in err, (argv, status, err)
        assert err.count("\n") == 1  # one sentence


def test_a_missing_backbone_is_said_before_the_data_is_read(tmp_path, colour_clips):
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    results, heavy = first_errors(["train", str(colour_clips), "--backbone", "someone/absent", "--out", str(tmp_path / "r")],
                                  ["predict", "--backbone", "someone/absent", str(tmp_path / "x.mp4")], env=env)
    assert heavy == []
    assert all(status == 2 and "hf download someone/absent" in err for status, err in results), results


def test_a_busy_port_is_said_before_the_weights_load(tiny_run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        [(status, err)], heavy = first_errors(["serve", str(tiny_run), "--port", str(busy.getsockname()[1])])
    assert status == 2 and "Address already in use" in err and "--port" in err
    assert "torch" not in heavy and "transformers" not in heavy
