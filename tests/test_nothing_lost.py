"""Nothing finished is lost: a rerun builds its output beside the old one and swaps it in only when complete,
Ctrl-C always says how to go on, and `--resume` on a finished run changes nothing unless asked for more."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shlex
import shutil
import signal
from pathlib import Path

import pytest

from snapaction.cli import build_parser, main
from snapaction.files import building, replace_dir

SEED = int(os.environ.get("SNAPACTION_TEST_SEED", random.SystemRandom().randrange(10**6)))
"""Where the interrupted rerun is cut: random on each run, printed on failure, repeatable with SNAPACTION_TEST_SEED."""


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_tree(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


@contextlib.contextmanager
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as in a terminal (a suite started in the background inherits it ignored)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


# --- one owner for replacing a folder: snapaction.files --------------------------------


def test_a_build_that_fails_leaves_the_old_folder_byte_identical_and_one_that_ends_replaces_it(tmp_path):
    dst = tmp_path / "out"
    write_tree(dst, {"a.txt": "old a", "sub/b.txt": "old b"})
    before = snapshot(dst)
    dead = tmp_path / ".out-build-999999999-x"  # left by a build that was killed outright (no such process)
    dead.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with building(dst) as new:
            write_tree(new, {"a.txt": "new a"})
            raise KeyboardInterrupt
    assert snapshot(dst) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # neither the half-built folder nor the dead one's
    with building(dst) as new:
        write_tree(new, {"a.txt": "new a"})
        assert snapshot(dst) == before  # untouched while the new one is built
    assert snapshot(dst) == {"a.txt": b"new a"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_ctrl_c_during_the_swap_waits_until_the_new_folder_is_in(tmp_path, monkeypatch):
    """A real SIGINT right after the old folder is moved aside: without waiting, the folder would be gone."""
    old, new = tmp_path / "out", tmp_path / "new"
    write_tree(old, {"a.txt": "old"})
    write_tree(new, {"a.txt": "new"})
    real = os.replace

    def rename_then_ctrl_c(src, dst):
        real(src, dst)
        if Path(dst).name == "out.old":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", rename_then_ctrl_c)
    with ctrl_c_raises(), pytest.raises(KeyboardInterrupt):
        replace_dir(new, old)
    monkeypatch.undo()
    assert snapshot(old) == {"a.txt": b"new"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_error_between_the_renames_puts_the_old_folder_back(tmp_path, monkeypatch):
    old, new = tmp_path / "out", tmp_path / "new"
    write_tree(old, {"a.txt": "old"})
    write_tree(new, {"a.txt": "new"})
    real = os.replace

    def second_rename_fails(src, dst):
        if Path(src) == new:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", second_rename_fails)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(new, old)
    monkeypatch.undo()
    assert snapshot(old) == {"a.txt": b"old"} and not (tmp_path / "out.old").exists()


# --- the demo: a rerun interrupted at any moment keeps the previous run whole -----------

TINY_DEMO = ["--clips-per-class", "4", "--test-clips-per-class", "1", "--epochs", "1"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A tiny demo run, with what it printed and every os.replace it made (dst paths, in order)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    real, calls = os.replace, []

    def counted(src, dst):
        calls.append((Path(src), Path(dst)))
        real(src, dst)

    said = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(said):
        patch.setattr(os, "replace", counted)
        assert main(["demo", "--out", str(out), *TINY_DEMO]) == 0
    return out, said.getvalue(), calls


def test_the_demo_says_which_epoch_it_kept(demo):
    out, said, _ = demo
    report = json.loads((out / "run" / "report.json").read_text())
    line = [l for l in said.splitlines() if l.startswith("kept epoch")][0]
    assert line.startswith(f"kept epoch {report['best_epoch']} of 1, the best on validation: "
                           f"validation accuracy {report['val_accuracy']:.3f}; held-out accuracy ")
    saved = json.loads((out / "run" / "snapaction.json").read_text())
    assert saved["config"]["out"] == str(out / "run")  # built beside, but it names the folder it is in (for --resume)


def test_a_rerun_interrupted_at_a_random_moment_leaves_the_previous_run_whole(demo, capsys):
    """Cut at a random one of its renames (every file written, every folder swapped: the moments that change the
    disk); the worst of them, between the two renames of a swap, is also tested on its own above."""
    out, _, calls = demo
    run = out / "run"
    before = snapshot(run)
    assert {"curves.png", "eval-test/confusion_matrix.png", "eval-test/report.json", "metrics.csv"} <= set(before)

    def the_runs(dst) -> bool:  # the rerun reuses the clips and their cache: it makes the first run's other renames
        parts = Path(dst).parts
        return parts[:len(out.parts)] == out.parts and parts[len(out.parts):][:1] not in (("data",), ("cache",))

    ours = [dst for src, dst in calls if the_runs(dst)]
    ours.insert(-1, run.with_name("run.old"))  # a rerun also moves the previous run aside, just before the new one goes in
    assert ours[-1] == run
    n = random.Random(SEED).randint(1, len(ours))
    real, count = os.replace, {"n": 0}

    def stop_at_the_nth(src, dst):
        count["n"] += the_runs(dst)
        if count["n"] == n and the_runs(dst):
            raise KeyboardInterrupt
        real(src, dst)

    os.replace = stop_at_the_nth
    try:
        code = main(["demo", "--out", str(out), *TINY_DEMO])
    finally:
        os.replace = real
    where = f"(seed {SEED}: stopped at rename {n} of {len(ours)}, {ours[n - 1]})"
    assert code == 130, where
    assert snapshot(run) == before, where
    assert sorted(p.name for p in out.iterdir()) == ["cache", "data", "run"], where  # no half-built run left beside it
    said = capsys.readouterr().out
    assert f"demo interrupted: {run} holds the last demo run that completed, whole; the run it was training was discarded" in said, where


def test_an_export_interrupted_at_its_end_leaves_the_earlier_export_whole_and_other_folders_are_refused(tiny_run, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'snapaction[onnx]')")
    import snapaction.engines.onnx as onnx

    out = tmp_path / "export"
    write_tree(out, {"model.onnx": "an earlier export", "export.json": "{}"})  # (exporting it for real costs seconds)
    before = snapshot(out)

    def ctrl_c(*args, **kwargs):  # the last step before the swap: the new model.onnx is written and checked
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx, "quantize_model", ctrl_c)
    assert main(["export", str(tiny_run), "--onnx", str(out), "--int8"]) == 130
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    mine = tmp_path / "mine"
    write_tree(mine, {"notes.txt": "keep me"})
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--onnx", str(mine)]) == 2
    assert f"--onnx {mine} holds files that are not an export of SnapAction's; pass a new or empty folder" in capsys.readouterr().err
    assert snapshot(mine) == {"notes.txt": b"keep me"}


def test_shards_rewritten_with_other_settings_and_interrupted_leave_the_earlier_shards_whole(tmp_path, monkeypatch):
    import snapaction.pretrain.shards as shards
    from test_shards import tiny_clips

    clips = tiny_clips(tmp_path / "clips", 3)
    out = tmp_path / "shards"
    shards.write_shards(clips, out, num_frames=2, size=16, clips_per_shard=1, workers=1, progress=False)
    before = snapshot(out)
    real, written = shards._write_tar, []

    def ctrl_c_at_the_second(folder, number, samples):
        written.append(number)
        if number == 1:
            raise KeyboardInterrupt
        return real(folder, number, samples)

    monkeypatch.setattr(shards, "_write_tar", ctrl_c_at_the_second)
    with pytest.raises(KeyboardInterrupt):  # other settings: every shard is written anew
        shards.write_shards(clips, out, num_frames=2, size=16, clips_per_shard=2, workers=1, progress=False)
    assert written == [0, 1] and snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "shards"]
    assert shards.open_shards(out).clips_per_shard == 1


def test_eval_refuses_to_replace_a_folder_that_is_not_a_report_and_deletes_nothing(tiny_run, tmp_path, capsys):
    mine = tmp_path / "results"
    write_tree(mine, {"notes.txt": "keep me"})
    assert main(["eval", str(tiny_run), str(tiny_run.parent / "data" / "test"), "--out", str(mine)]) == 2
    assert (f"{mine} holds files that are not an eval report; pass --out a new or empty folder (an earlier report there "
            "is replaced), SnapAction will not delete them") in capsys.readouterr().err
    assert snapshot(mine) == {"notes.txt": b"keep me"}


def test_a_demo_dataset_rewritten_with_other_settings_and_interrupted_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    import snapaction.demo.dataset as dataset

    out = tmp_path / "data"
    tiny = dict(clips_per_class=1, test_clips_per_class=1, size=32, num_frames=8, fps=8, workers=1)
    dataset.write_demo_dataset(out, **tiny)
    before = snapshot(out)
    real, calls = dataset._write_one, []

    def ctrl_c_at_the_third(job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(dataset, "_write_one", ctrl_c_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        dataset.write_demo_dataset(out, **{**tiny, "clips_per_class": 2})
    assert len(calls) == 3 and snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


# --- Ctrl-C says how to go on, in every case -------------------------------------------


def tiny_train_args(tiny_run: Path, out: Path, *extra: str) -> list[str]:
    data = tiny_run.parent / "data" / "train"
    return ["train", str(data), "--backbone", "scratch", "--out", str(out), "--epochs", "1", "--batch-size", "4",
            "--num-frames", "4", "--cache-dir", str(tiny_run.parent / "cache"), *extra]


@pytest.mark.parametrize("when", ["before the first checkpoint", "before the first epoch ends"])
def test_ctrl_c_prints_the_resume_command_and_it_goes_on_in_place(tiny_run, tmp_path, monkeypatch, capsys, when):
    import snapaction.run as run
    import snapaction.training.loop as loop
    from snapaction.training.config import train_config
    from snapaction.training.setup import check_out

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(*(run, "save_checkpoint") if when == "before the first checkpoint" else (loop, "skip_batch"), ctrl_c)
    out = tmp_path / "my run"
    assert main(tiny_train_args(tiny_run, out)) == 130
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("interrupted")][0]
    kept = (f"the best epoch so far (1, validation accuracy " if when == "before the first checkpoint"
            else f"no epoch finished, so {out} holds no weights yet;")
    assert line.startswith(f"interrupted {'after' if when == 'before the first checkpoint' else 'during'} epoch 1: {kept}"), line
    assert line.endswith("; no checkpoint was written yet, so it starts over in the same folder, with the same data and options, "
                         f"with: snapaction train --out {shlex.quote(str(out))} --resume"), line
    assert shlex.split(line.split(" with: ", 1)[1]) == ["snapaction", "train", "--out", str(out), "--resume"]
    # the command works there: it reads the run's own options and starts over in the folder (tests/test_crash_safety.py trains it)
    cfg = train_config({"out": str(out), "resume": True})
    assert (cfg.data, cfg.backbone, cfg.epochs, cfg.sampling["num_frames"]) == (str(tiny_run.parent / "data" / "train"), "scratch", 1, 4)
    _, cfg = check_out(cfg)
    assert "stopped before its first checkpoint" in capsys.readouterr().out and not cfg.resume


# --- --resume on a finished run --------------------------------------------------------


def state_of(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_on_a_finished_run_says_so_and_changes_nothing(tiny_run, capsys):
    before = state_of(tiny_run)
    report = json.loads((tiny_run / "report.json").read_text())
    assert main(["train", "--out", str(tiny_run), "--resume"]) == 0
    said = capsys.readouterr().out
    assert (f"{tiny_run} had finished training (2 epochs run), best validation accuracy {report['val_accuracy']:.3f} at epoch "
            f"{report['best_epoch']}; nothing was changed. To train it further, ask for more (a larger --epochs): "
            f"snapaction train --out {tiny_run} --resume --epochs 7") in said
    assert "epoch   3" not in said
    assert state_of(tiny_run) == before  # not a byte, not a timestamp


def test_resume_with_a_larger_epochs_trains_on_to_that_count_then_is_finished_again(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3"]) == 0
    said = capsys.readouterr().out
    assert "epoch   3" in said and "epoch   4" not in said
    now = (run / "metrics.csv").read_text().splitlines()
    assert now[:3] == rows and [r.split(",")[0] for r in now[1:]] == ["1", "2", "3"]  # the first two epochs as they were
    assert json.loads((run / "report.json").read_text())["epochs_run"] == 3
    assert main(["train", "--out", str(run), "--resume"]) == 0  # the run now asks for 3: finished
    assert "had finished training (3 epochs run)" in capsys.readouterr().out


def finished_folder(folder: Path, stopped_by: str, epoch: int, asked: int, max_minutes=None, finetune="full", checkpoint=True) -> Path:
    """The files `finished_result` reads, as a run that ended this way leaves them."""
    from snapaction.run import RunInfo

    RunInfo(["a", "b"], "scratch", finetune, "model", {}, {}, config={"epochs": asked, "max_minutes": max_minutes}).save(folder)
    (folder / "report.json").write_text(json.dumps({"best_epoch": 1, "val_accuracy": 0.5, "val_loss": 0.7, "epochs_run": epoch,
                                                    "seconds": 9.0, "skipped": [], "stopped_by": stopped_by,
                                                    "epochs_asked": asked, "max_minutes": max_minutes}))
    if checkpoint:
        write_tree(folder, {"checkpoint/state.json": json.dumps({"epoch": epoch, "finished": {
            "stopped_by": stopped_by, "epoch": epoch, "epochs_asked": asked, "max_minutes": max_minutes}})})
    return folder


@pytest.mark.parametrize("stopped_by, given, more", [
    ("epochs", {}, False),
    ("epochs", {"epochs": 10}, False),
    ("epochs", {"epochs": 11}, True),
    ("patience", {"epochs": 10}, False),
    ("patience", {"epochs": 12}, True),
    ("budget", {"epochs": 20}, False),  # the same budget would end it again at once: a larger --max-minutes goes on
    ("budget", {"max_minutes": 2.0}, True),
    ("asked", {}, True),  # stopped from the studio: not finished, --resume goes on
])
def test_what_asks_a_finished_run_for_more(tmp_path, stopped_by, given, more):
    from snapaction.training.config import TrainConfig
    from snapaction.training.setup import finished_result

    finished_folder(tmp_path, stopped_by, 6 if stopped_by != "epochs" else 10, 10, max_minutes=1.0)
    if stopped_by == "asked":
        (tmp_path / "checkpoint" / "state.json").write_text(json.dumps({"epoch": 6}))
    cfg = TrainConfig(**{"data": "x", "out": str(tmp_path), "resume": True, "epochs": 10, "max_minutes": 1.0, **given})
    result = finished_result(cfg)
    assert (result is None) == more
    if result is not None:
        assert result.already_finished and result.stopped_by == stopped_by and result.epochs_asked == 10


def test_a_finished_probe_run_without_a_checkpoint_is_finished_and_a_continuation_cut_short_is_not(tmp_path):
    from snapaction.training.config import TrainConfig
    from snapaction.training.setup import finished_result

    probe = finished_folder(tmp_path / "probe", "epochs", 10, 10, finetune="probe", checkpoint=False)
    assert finished_result(TrainConfig(data="x", out=str(probe), resume=True, epochs=10)).best_epoch == 1
    cut = finished_folder(tmp_path / "cut", "epochs", 10, 10)  # continued to 20, stopped at 14: its checkpoint is newer
    (cut / "checkpoint" / "state.json").write_text(json.dumps({"epoch": 14}))
    assert finished_result(TrainConfig(data="x", out=str(cut), resume=True, epochs=20)) is None


# --- one name for one idea: --max-minutes ---------------------------------------------


@pytest.mark.parametrize("command, field", [
    (["train", "clips/"], "max_minutes"),
    (["demo"], "max_minutes"),
    (["pretrain", "footage/", "--out", "b"], "minutes"),
])
def test_max_minutes_on_every_command_with_minutes_as_a_hidden_alias(command, field, capsys):
    for flag in ("--max-minutes", "--minutes"):
        argv = [*command, flag, "3"]
        assert getattr(build_parser(argv).parse_args(argv), field) == 3.0
    with pytest.raises(SystemExit):
        build_parser([command[0]]).parse_args([command[0], "--help"])
    text = capsys.readouterr().out
    assert "--max-minutes" in text and "--minutes" not in text
