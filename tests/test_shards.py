"""Tar shards for pretraining: round trip, manifest, reruns, bad clips, the per-rank stream and the CLI.

The stream read by two processes is in test_two_processes.py, which launches two processes once for it and for training."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import solid_clip, write_video
from snapaction.cli import main
from snapaction.errors import ConfigError, DataError
from snapaction.pretrain import shards as shards_module
from snapaction.pretrain.curate import CuratedClip, curate
from snapaction.pretrain.shards import ShardStream, open_shards, read_shard, write_shards
from snapaction.video import probe, read_frames


def tiny_clips(root: Path, n: int, t: int = 12) -> list[CuratedClip]:
    """`n` small non-square clips (32 wide, 24 high) of different colours, as curate would keep them (whole)."""
    clips = []
    for i in range(n):
        frames = solid_clip(((37 * i) % 256, (91 * i) % 256, 200), t=t, size=32, seed=i, moving="down")[:, 4:28]
        path = write_video(root / f"clip{i:02d}.mp4", frames, codec="libx264")
        info = probe(path)
        clips.append(CuratedClip(path, 0.0, None, 0, info.num_frames, info.fps))
    return clips


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("footage")
    tiny_clips(root, 5, t=16)
    return root


def test_shards_hold_the_frames_read_frames_gives_and_a_rerun_writes_nothing(footage, tmp_path, monkeypatch):
    curation = curate(footage, workers=1, progress=False)
    assert len(curation.kept) == 5
    out = tmp_path / "shards"
    manifest = write_shards(curation, out, num_frames=4, size=32, clips_per_shard=2, workers=1, progress=False)
    assert [s.samples for s in manifest.shards] == [2, 2, 1]  # equal but the last
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert manifest.curation["counts"]["kept"] == 5 and manifest.skipped == []
    assert manifest.bytes == sum(p.stat().st_size for p in manifest.paths())
    assert open_shards(out) == manifest
    with tarfile.open(manifest.paths()[0]) as tar:
        assert tar.getnames()[:6] == ["0000000.json", "0000000.00.jpg", "0000000.01.jpg", "0000000.02.jpg", "0000000.03.jpg", "0000001.json"]

    samples = [s for path in manifest.paths() for s in read_shard(path)]
    assert [key for key, _, _ in samples] == [f"{i:07d}" for i in range(5)]
    for clip, (_, meta, frames) in zip(curation.kept, samples):
        assert meta == {"path": str(clip.path), "start": 0.0, "end": None, "fps": clip.fps, "frames": clip.indices(4).tolist()}
        expected = read_frames(clip.path, clip.indices(4), size=32)
        assert frames.dtype == np.uint8 and frames.shape == expected.shape == (4, 32, 42, 3)  # aspect kept: 32x24 -> 42x32
        assert np.abs(frames.astype(int) - expected).mean() < 3  # JPEG's error only

    def no_decoding(job):
        raise AssertionError("a rerun decoded a clip")

    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    monkeypatch.setattr(shards_module, "_encode", no_decoding)
    again = write_shards(curate(footage, workers=1, progress=False), out, num_frames=4, size=32, clips_per_shard=2, workers=1, progress=False)
    assert again == manifest and {p: p.stat().st_mtime_ns for p in out.iterdir()} == before
    monkeypatch.undo()
    fewer = write_shards(curation.kept, out, num_frames=4, size=32, clips_per_shard=4, workers=1, progress=False)  # settings changed
    assert [s.samples for s in fewer.shards] == [4, 1] and fewer.curation is None
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-000000.tar", "shard-000001.tar"]  # the stale third gone


def test_a_clip_that_fails_while_writing_is_skipped_and_listed(tmp_path):
    clips = tiny_clips(tmp_path / "clips", 4)
    clips[1].path.write_bytes(clips[1].path.read_bytes()[:400])  # damaged after curation
    manifest = write_shards(clips, tmp_path / "shards", num_frames=4, size=32, clips_per_shard=2, workers=2, progress=False)
    assert [s.samples for s in manifest.shards] == [2, 1]
    assert [s["clip"] for s in manifest.skipped] == [str(clips[1].path)]
    assert "damaged or truncated MP4/MOV file" in manifest.skipped[0]["reason"]
    assert json.loads((tmp_path / "shards" / "manifest.json").read_text())["skipped"] == manifest.skipped
    keys = [key for path in manifest.paths() for key, _, _ in read_shard(path)]
    assert keys == ["0000000", "0000002", "0000003"]


def test_folders_that_are_not_finished_shards_say_how_to_fix_it(tmp_path, footage):
    with pytest.raises(DataError, match=r"does not exist; run `snapaction shard UNLABELED --out .*nowhere` first"):
        open_shards(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no manifest.json, so it is not a finished folder of shards"):
        open_shards(tmp_path / "empty")
    out = tmp_path / "shards"
    write_shards(curate(footage, workers=1, progress=False), out, num_frames=2, size=16, clips_per_shard=2, workers=1, progress=False)
    (out / "shard-000001.tar").unlink()
    with pytest.raises(DataError, match=r"lacks 1 of its 3 shards \(shard-000001.tar\); run `snapaction shard"):
        open_shards(out)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "holiday.mp4").write_bytes(b"x")
    with pytest.raises(DataError, match=r"holds files `snapaction shard` did not write \(holiday.mp4\)"):
        write_shards(curate(footage, workers=1, progress=False), tmp_path / "theirs", progress=False)
    assert [p.name for p in (tmp_path / "theirs").iterdir()] == ["holiday.mp4"]


def test_the_stream_splits_shards_between_ranks_and_workers_and_refuses_too_few(tmp_path, monkeypatch):
    manifest = write_shards(tiny_clips(tmp_path / "clips", 5), tmp_path / "shards", num_frames=2, size=16, clips_per_shard=2,
                            workers=1, progress=False)
    streams = [ShardStream(manifest, rank=r, world_size=2, seed=1, shuffle_buffer=2, with_keys=True) for r in range(2)]
    for epoch in range(3):
        seen = []
        for s in streams:
            s.set_epoch(epoch)
            keys = [key for key, frames in s]
            assert len(keys) == s.samples_for_rank(s.rank, 2, epoch)
            seen += keys
        assert sorted(seen) == [f"{i:07d}" for i in range(5)]  # each clip once per epoch
    key, frames = next(iter(streams[0]))
    assert frames.dtype == __import__("torch").uint8 and frames.shape == (2, 16, 21, 3)

    with pytest.raises(ConfigError, match=r"holds 3 shards, fewer than the 4 processes x 1 DataLoader workers = 4 .* "
                                          r"smaller --clips-per-shard \(now 2; at most 1 gives every one a shard\)"):
        ShardStream(tmp_path / "shards", rank=0, world_size=4)
    monkeypatch.setattr("torch.utils.data.get_worker_info", lambda: SimpleNamespace(id=0, num_workers=2))
    with pytest.raises(ConfigError, match="fewer than the 2 processes x 2 DataLoader workers = 4"):
        next(iter(streams[0]))


def test_shard_command_dry_run_prints_the_report_and_writes_nothing_and_help_lists_every_option(footage, tmp_path, capsys):
    out = tmp_path / "shards"
    assert main(["shard", str(footage), "--out", str(out), "--dry-run", "--workers", "1"]) == 0
    said = capsys.readouterr().out
    assert f"curated {footage}: 5 clips kept, 0 left out" in said and "clips of" not in said
    assert not out.exists()
    assert main(["shard", str(footage), "--out", str(out), "--num-frames", "2", "--size", "16", "--clips-per-shard", "3",
                 "--workers", "1"]) == 0
    said = capsys.readouterr().out
    assert "5 clips of 2 frames (short side 16 px) in 2 shards" in said and open_shards(out).samples == 5
    assert main(["shard", str(footage)]) == 2
    assert "pass --out SHARDS" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["shard", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--out", "--num-frames", "--size", "--clips-per-shard", "--cut-seconds", "--min-frames", "--static-threshold",
                   "--near-duplicate-bits", "--workers", "--dry-run"):
        assert option in text
    assert "print the curation report only; write nothing" in text and "(default: 64)" in text
