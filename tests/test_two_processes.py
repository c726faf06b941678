"""Two CPU processes, launched as a user launches them: training one model, each reading its share of shards, and
pretraining on those shards.

One `accelerate launch` serves both tests: each launched process pays torch's and transformers' import
(most of the time), then trains, then reads its ShardStream. Training goes first, so the process group it
checks is the one training set up (reading shards first would set one up for it).

Launched with ``--multi_gpu`` (torchrun underneath) and ``cpu=True`` in the processes (gloo on CPUs):
``--cpu --num_processes 2`` starts a single process in accelerate 1.x unless mpirun is set up, and a
test launched that way passes without two processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import snapaction
from conftest import save_tiny_videomae, write_colour_clips
from snapaction.pretrain.shards import write_shards
from test_shards import tiny_clips
from test_train import read_metrics, write_cut_faststart_clip

# In each launched process: `snapaction train`, then the world its Accelerator was part of; then the shards
# read through a DataLoader of two workers, for two epochs.
LAUNCHED = """
import json, sys
import torch
from accelerate import PartialState
from snapaction.cli import main

shards, out, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
code = main(argv)
state = PartialState()  # the state the training's Accelerator set up
with open(f"{out}/train{state.process_index}.json", "w") as f:
    json.dump({"code": code, "processes": state.num_processes, "type": str(state.distributed_type)}, f)

from snapaction.pretrain.shards import ShardStream

state = PartialState(cpu=True)
assert state.num_processes == 2, state.distributed_type
stream = ShardStream(shards, rank=state.process_index, world_size=state.num_processes, seed=3, shuffle_buffer=3, with_keys=True)
epochs = []
for epoch in range(2):
    stream.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    seen = [(key, list(frames.shape), str(frames.dtype)) for key, frames in loader]
    epochs.append({"keys": [k for k, _, _ in seen], "shapes": sorted({str(s) + d for _, s, d in seen}),
                   "expected": stream.samples_for_rank(state.process_index, state.num_processes, epoch)})
with open(f"{out}/rank{state.process_index}.json", "w") as f:
    json.dump(epochs, f)

# the same shards through `snapaction pretrain`: one process takes more batches than the other in an epoch
from snapaction.pretrain.loop import pretrain
from snapaction.pretrain.settings import PretrainConfig

result = pretrain(PretrainConfig(data=shards, out=f"{out}/backbone", backbone=f"{out}/tiny-videomae", epochs=2, batch_size=2,
                                 preview_every=0, checkpoint_minutes=0, seed=3))
with open(f"{out}/pretrain{state.process_index}.json", "w") as f:
    json.dump({"steps": result.steps, "epochs": result.epochs}, f)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """(the launch's CompletedProcess, its folder): two processes train on colour clips, then read 10 clips' shards."""
    from snapaction.video import probe

    root = tmp_path_factory.mktemp("two-processes")
    colours = write_colour_clips(root / "colours")
    train_root = write_colour_clips(root / "train")
    cut = write_cut_faststart_clip(train_root / "red" / "cut.mp4")
    assert probe(cut).num_frames == 24  # passes the up-front check; fails only when frames are read
    manifest = write_shards(tiny_clips(root / "clips", 10, t=6), root / "shards", num_frames=4, size=32,
                            clips_per_shard=2, workers=1, progress=False)
    assert len(manifest.shards) == 5  # enough for 2 processes x 2 workers
    save_tiny_videomae(root / "tiny-videomae")

    script = root / "launched.py"
    script.write_text(LAUNCHED)
    src = str(Path(snapaction.__file__).parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    with socket.socket() as free:  # a port of our own: another test run may be rendezvousing on the default one
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend", "no",
        str(script), str(root / "shards"), str(root),
        "train", str(train_root), "--val-data", str(colours), "--backbone", "scratch", "--out", str(root / "ddp"), "--epochs", "1",
        "--batch-size", "2", "--num-frames", "4", "--cache-frames", "8", "--lr", "3e-3", "--cache-dir", str(root / "cache"),
        "--mixup-alpha", "0", "--patience", "0",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return done, root


def test_two_cpu_processes_train_one_model_and_report_a_clip_failing_mid_training(launched):
    """The processes train one model together, and a clip that probes well but fails to decode is reported
    while both processes go on."""
    done, root = launched
    ranks = [json.loads((root / f"train{r}.json").read_text()) for r in range(2) if (root / f"train{r}.json").exists()]
    assert ranks == [{"code": 0, "processes": 2, "type": "DistributedType.MULTI_CPU"}] * 2, (ranks, done.stderr[-4000:])
    assert "cut.mp4" in done.stderr  # reported, not silently dropped
    rows = read_metrics(root / "ddp")
    assert len(rows) == 1
    # Red against blue is easy: both processes' halves of every batch must have trained one model.
    assert float(rows[-1]["val_accuracy"]) == 1.0
    assert done.stdout.count("epoch   1") == 1  # only the main process prints


def test_two_processes_with_two_workers_each_see_every_clip_once_per_epoch_in_a_new_order(launched):
    """Each process reads its ShardStream through a DataLoader of two workers."""
    done, root = launched
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    ranks = [json.loads((root / f"rank{r}.json").read_text()) for r in range(2)]
    every = [f"{i:07d}" for i in range(10)]
    for epoch in range(2):
        keys = [k for rank in ranks for k in rank[epoch]["keys"]]
        assert sorted(keys) == every  # each clip exactly once across the processes and their workers
        assert [len(rank[epoch]["keys"]) for rank in ranks] == [rank[epoch]["expected"] for rank in ranks]
        assert all(rank[epoch]["keys"] for rank in ranks)  # both processes read
        assert all(rank[epoch]["shapes"] == ["[4, 32, 42, 3]torch.uint8"] for rank in ranks)
    assert [k for rank in ranks for k in rank[0]["keys"]] != [k for rank in ranks for k in rank[1]["keys"]]  # reshuffled



def test_two_processes_pretrain_through_epochs_where_one_has_a_batch_more(launched):
    """An uneven epoch used to leave one process waiting forever in the other's gradient average; now both finish,
    and both count the steps of the busier one, epoch by epoch."""
    done, root = launched
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    ranks = [json.loads((root / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(ranks[0][epoch]["expected"] != ranks[1][epoch]["expected"] for epoch in range(2))  # really uneven
    steps = sum(max(-(-rank[epoch]["expected"] // 2) for rank in ranks) for epoch in range(2))
    for r in range(2):
        assert json.loads((root / f"pretrain{r}.json").read_text()) == {"steps": steps, "epochs": 2}
    report = json.loads((root / "backbone" / "pretraining" / "report.json").read_text())
    assert report["processes"] == 2 and report["clips"] == 10
    assert (root / "backbone" / "model.safetensors").is_file()
