"""Curation on the demo data with planted bad clips: does `curate` find exactly the planted ones, and how fast?

  python bench/curate_demo.py [--clips-per-class 30] [--planted 6] [--workers 2]

Writes the demo dataset's training clips, then plants N byte copies, N near
duplicates (re-encoded; brightened; cropped by a few pixels), N static clips (one
frame repeated) and N too-short clips (8 frames), plus one unreadable file.
Prints the curation report, precision and recall per reason, the time per clip,
and the figures the thresholds were chosen from: the motion of kept and static
clips, the hash distance of planted near duplicates to their originals and the
smallest distance between two distinct clips, and the same on the shared real
clips of people (all of which should be kept).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from snapaction.demo.dataset import write_clip, write_demo_dataset
from snapaction.pretrain.curate import HASHED_FRAMES, REASONS, _BITS, _judge, curate
from snapaction.video import probe, read_frames

REAL = Path("/work/shared/data/real-clips")


def plant(train: Path, n: int) -> dict[str, set[str]]:
    """Bad clips in train/planted/ (sorted after the class folders, so the originals come first): reason -> paths."""
    originals = sorted(train.glob("*/*.mp4"))
    out = train / "planted"
    out.mkdir()
    expected: dict[str, set[str]] = {kind: set() for kind in REASONS}
    for i in range(n):
        copy = out / f"copy_{i}.mp4"
        shutil.copyfile(originals[i], copy)
        expected["duplicate"].add(str(copy))

        source = originals[n + i]
        frames = read_frames(source, np.arange(probe(source).num_frames))
        how = ("reencoded", "brighter", "cropped")[i % 3]
        if how == "brighter":
            frames = np.clip(frames.astype(int) + 20, 0, 255).astype(np.uint8)
        elif how == "cropped":
            frames = np.ascontiguousarray(frames[:, 2:-2, 2:-2])
        near = write_clip(out / f"near_{how}_{i}.mp4", frames, 16)
        expected["near_duplicate"].add(str(near))

        frames = read_frames(originals[2 * n + i], [5] * 32)
        static = write_clip(out / f"static_{i}.mp4", frames, 16)
        expected["static"].add(str(static))

        frames = read_frames(originals[3 * n + i], np.arange(8))
        short = write_clip(out / f"short_{i}.mp4", frames, 16)
        expected["too_short"].add(str(short))
    broken = out / "broken.mp4"
    broken.write_bytes(originals[0].read_bytes()[:600])
    expected["unreadable"].add(str(broken))
    return expected


def hash_distances(signatures: list[np.ndarray]) -> np.ndarray:
    """Most bits any sampled frame differs in, for every pair of clips (upper triangle, flattened)."""
    rows = np.stack(signatures)
    differ = _BITS[(rows[:, None] ^ rows[None]).view(np.uint8)].reshape(len(rows), len(rows), HASHED_FRAMES, 8).sum(-1).max(-1)
    return differ[np.triu_indices(len(rows), 1)]


def figures(paths: list[Path]) -> tuple[list[float], list[np.ndarray]]:
    judged = [_judge((p, None, 2)) for p in paths]
    return [j["segments"][0][5] for j in judged], [j["segments"][0][4] for j in judged]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-per-class", type=int, default=30)
    parser.add_argument("--planted", type=int, default=6, help="clips planted of each kind")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = write_demo_dataset(Path(tmp) / "demo", clips_per_class=args.clips_per_class, test_clips_per_class=1)
        expected = plant(data.train_dir, args.planted)
        start = time.perf_counter()
        curation = curate(data.train_dir, workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
        print(curation.report())
        print()
        found = {kind: {item.what for item in curation.left_out if item.kind == kind} for kind in REASONS}
        exact = True
        print(f"{'reason':<16}{'planted':>8}{'found':>7}{'precision':>11}{'recall':>8}")
        for kind in REASONS:
            hit = len(found[kind] & expected[kind])
            precision = hit / len(found[kind]) if found[kind] else 1.0
            recall = hit / len(expected[kind]) if expected[kind] else 1.0
            exact &= found[kind] == expected[kind]
            print(f"{kind:<16}{len(expected[kind]):>8}{len(found[kind]):>7}{precision:>11.2f}{recall:>8.2f}")
        clips = sum(1 for _ in data.train_dir.rglob("*.mp4"))
        print(f"found exactly the planted ones: {exact}; {clips} clips in {seconds:.1f} s = {1000 * seconds / clips:.0f} ms per clip "
              f"(workers: {args.workers or 'one per core'})")

        kept_paths = [clip.path for clip in curation.kept]
        moving, kept_hashes = figures(kept_paths)
        static, _ = figures(sorted(Path(p) for p in expected["static"]))
        print(f"\nmotion (grey levels): kept demo clips min {min(moving):.2f} median {np.median(moving):.2f}; "
              f"planted static max {max(static):.2f}")
        near = sorted(data.train_dir.glob("planted/near_*.mp4"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        originals = sorted(data.train_dir.glob("*/*.mp4"))[args.planted : 2 * args.planted]
        pairs = [hash_distances(figures([a, b])[1])[0] for a, b in zip(originals, near)]
        print(f"hash bits: planted near duplicates to their originals {sorted(int(d) for d in pairs)}; "
              f"distinct kept clips at least {int(hash_distances(kept_hashes).min())}")
    if REAL.is_dir():
        real = curate(REAL, progress=False)
        moving, hashes = figures([clip.path for clip in real.kept])
        print(f"\nreal clips: {len(real.kept)} of {len(real.kept) + len(real.left_out)} kept; motion min {min(moving):.2f} "
              f"(threshold {real.settings['static_threshold']}); distinct clips differ in at least {int(hash_distances(hashes).min())} bits")


if __name__ == "__main__":
    main()
