"""The decoded-clip cache: decoded once, keyed by content and settings, never half-written."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from conftest import write_video
from snapaction.data import cache as cache_module
from snapaction.data.cache import ClipCache, content_hash
from snapaction.errors import ClipError
from snapaction.data.sampling import uniform_indices


@pytest.fixture
def clip(tmp_path, random_frames):
    frames = random_frames(t=16, h=24, w=32)
    return write_video(tmp_path / "clip.mp4", frames), frames


@pytest.fixture
def decodes(monkeypatch):
    """Counts calls into the decoder that the cache uses."""
    calls = []
    real = cache_module.read_frames

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cache_module, "read_frames", counting)
    return calls


def entries(folder):
    return sorted(p for p in folder.rglob("*.npy"))


def test_load_decodes_once_then_reads_from_disk(tmp_path, clip, decodes):
    path, frames = clip
    cache = ClipCache(tmp_path / "cache")
    first = cache.load(path, 8, None)
    assert first.dtype == np.uint8 and first.shape == (8, 24, 32, 3)
    np.testing.assert_array_equal(first, frames[uniform_indices(16, 8)])  # lossless clip: exact pixels
    again = ClipCache(tmp_path / "cache").load(path, 8, None)  # a rerun: new object, same folder
    np.testing.assert_array_equal(again, first)
    assert len(decodes) == 1
    assert len(entries(tmp_path / "cache")) == 1


def test_key_follows_content_and_settings(tmp_path, clip, decodes, random_frames):
    path, _ = clip
    cache = ClipCache(tmp_path / "cache")
    small = cache.load(path, 8, 12)
    assert small.shape == (8, 12, 16, 3)  # short side scaled to 12
    cache.load(path, 4, 12)
    cache.load(path, 8, None)
    assert len(decodes) == 3 and len(entries(tmp_path / "cache")) == 3

    copy = tmp_path / "renamed.mp4"
    shutil.copy(path, copy)
    np.testing.assert_array_equal(cache.load(copy, 8, 12), small)  # same bytes: a hit
    assert len(decodes) == 3

    write_video(path, random_frames(t=16, h=24, w=32, seed=1))  # edited in place
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = cache.load(path, 8, 12)
    assert len(decodes) == 4 and not np.array_equal(changed, small)


def test_interrupted_write_leaves_no_entry(tmp_path, clip, monkeypatch):
    path, _ = clip
    cache = ClipCache(tmp_path / "cache")
    real_save = np.save

    def interrupted(f, frames, **kwargs):
        real_save(f, frames[:3], **kwargs)  # part of the data is on disk...
        raise KeyboardInterrupt  # ...when the run is stopped

    monkeypatch.setattr(np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.load(path, 8, None)
    monkeypatch.undo()
    assert entries(tmp_path / "cache") == []
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
    assert cache.load(path, 8, None).shape == (8, 24, 32, 3)


def test_damaged_entry_is_decoded_again(tmp_path, clip, caplog):
    path, frames = clip
    cache = ClipCache(tmp_path / "cache")
    entry = cache.entry(path, 8, None)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"\x93NUMPY garbage")
    np.testing.assert_array_equal(cache.load(path, 8, None), frames[uniform_indices(16, 8)])
    assert "unreadable" in caplog.text
    np.save(entry, np.zeros((3, 2, 2, 3), np.uint8))  # wrong frame count
    assert cache.load(path, 8, None).shape == (8, 24, 32, 3)
    assert np.load(entry).shape == (8, 24, 32, 3)


def test_stale_temporaries_are_removed(tmp_path):
    tmp = tmp_path / "cache" / "tmp"
    tmp.mkdir(parents=True)
    old, fresh = tmp / "a.npy.tmp", tmp / "b.npy.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    ClipCache(tmp_path / "cache")
    assert not old.exists() and fresh.exists()  # a fresh one may belong to a running writer


def test_frame_folder_hash_and_bad_clip(tmp_path, random_frames):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(random_frames(t=3)):
        Image.fromarray(frame).save(folder / f"{i}.png")
    before = content_hash(folder)
    assert before == content_hash(folder)
    Image.fromarray(random_frames(t=1, seed=5)[0]).save(folder / "1.png")
    os.utime(folder / "1.png", ns=(time.time_ns(), time.time_ns() + 10**9))  # timestamps can be coarser than one write
    assert content_hash(folder) != before
    assert ClipCache(tmp_path / "c").load(folder, 4, None).shape == (4, 24, 32, 3)

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    with pytest.raises(ClipError, match="empty"):
        ClipCache(tmp_path / "c").load(bad, 4, None)
