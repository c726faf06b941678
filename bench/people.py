"""The pose model on real people: leave-one-subject-out accuracy on ../shared/data/real-dev, per-frame cost of
body and hands, training time, and the temporal levers measured one at a time.

1. Cost (one core, ``os.sched_setaffinity``): ms per frame of decoding the grid, MediaPipe Pose and MediaPipe
   Hands on the 1280x720 clips of real-dev (decode included: the figure the 60 ms/frame goal is about).
2. Landmarks of every clip at 16 and 32 frames, cached under ``--cache`` (a rerun extracts nothing).
3. Leave one subject out (group = the ``S<n>_`` prefix of the file name), EVERY clip counted: a clip with
   nobody in view is classified like any other. One row per lever, each changed alone from the default:
   frames 16 vs 32, classifier (logistic regression on statistics, 1D CNN, both averaged, gradient-boosted
   trees on the statistics), features (hands, joint positions, posture, seen flags left out), test-time views
   (mirror off, time shifts), regularisation and augmentation.
   Accuracy with its Wilson 95 % interval, and training seconds per fold.

Run: ``python bench/people.py [--data DIR] [--cache DIR] [--quick] [--skip-cost]`` (``--quick``: no CNN).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from snapaction.pose import PoseSettings, train_pose_classifier  # noqa: E402
from snapaction.pose.features import PoseSequence, pose_sequence, resample_sequence, sequence_statistics  # noqa: E402
from snapaction.pose.landmarks import LandmarkCache, detect, detect_hands, grid_indices, hands_worth_finding  # noqa: E402
from snapaction.video import probe, read_frames  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev" / "fall-vs-adl"
POSITIONS = tuple(f"{name}." for name in ("nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
                                          "right_elbow", "left_wrist", "right_wrist", "left_index", "right_index", "left_hip",
                                          "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"))


def clips_of(root: Path) -> list[tuple[Path, str, str]]:
    """(path, class, subject) of every clip under ROOT/<class>/."""
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for clip in sorted(folder.glob("*.mp4")):
            out.append((clip, folder.name, clip.name.split("_")[0]))
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of k successes in n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def cost(clips: list[Path], frames: int = 16, size: int = 360) -> None:
    """ms per frame of decode, body and hands on one core."""
    blank = np.zeros((1, 64, 64, 3), np.uint8)
    detect(blank), detect_hands(blank)  # graphs made before timing
    rows = []
    for clip in clips:
        info = probe(clip)
        idx = grid_indices(info.num_frames, frames)
        short = size if size < min(info.width, info.height) else None
        start = time.perf_counter()
        decoded = read_frames(clip, idx, size=short, info=info)
        t_decode = time.perf_counter() - start
        start = time.perf_counter()
        image, _, _, present = detect(decoded)
        t_body = time.perf_counter() - start
        start = time.perf_counter()
        _, hands = detect_hands(decoded)
        t_hands = time.perf_counter() - start
        start = time.perf_counter()
        worth = hands_worth_finding(image, present, decoded.shape[2], decoded.shape[1])
        _, gated = detect_hands(decoded, worth)
        t_gated = time.perf_counter() - start
        ms = [1000 * t / frames for t in (t_decode, t_body, t_hands, t_gated)]
        rows.append(ms)
        print(f"  {clip.name:<12} {info.width}x{info.height}  decode {ms[0]:5.1f}  body {ms[1]:5.1f}  hands every frame {ms[2]:5.1f}"
              f" / where worth it {ms[3]:5.1f} ({int(worth.sum())} frames)  total {ms[0] + ms[1] + ms[3]:5.1f} ms/frame"
              f"   body in {int(present.sum())}/{frames}, hands in {int(hands.any(1).sum())} / {int(gated.any(1).sum())}", flush=True)
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f"  median       decode {med[0]:5.1f}  body {med[1]:5.1f}  hands every frame {med[2]:5.1f} / where worth it {med[3]:5.1f}"
          f"  total {med[0] + med[1] + med[3]:5.1f} ms/frame (every frame: {med[0] + med[1] + med[2]:5.1f}; hands = {med[2] / med[1]:.2f} x body)", flush=True)


def landmarks(items, frames: int, cache_dir: Path) -> list:
    cache = LandmarkCache(cache_dir, frames, 360, hands=True)
    out = []
    start = time.perf_counter()
    for path, _, _ in items:
        out.append(cache.get(path))
    print(f"  landmarks of {len(items)} clips at {frames} frames: {time.perf_counter() - start:.1f} s (cached after the first run)", flush=True)
    return out


def no_hands(seq: PoseSequence) -> PoseSequence:
    z = np.zeros_like
    return dataclasses.replace(seq, hand_shape=z(seq.hand_shape), hand_frame=z(seq.hand_frame), hand_body=z(seq.hand_body),
                               hand_seen=z(seq.hand_seen))


def shifted(seq: PoseSequence, length: int) -> list[PoseSequence]:
    """The clip and two time-shifted 85 % windows of it (start, end), each resampled to `length`."""
    t = seq.length - 1
    views = [resample_sequence(seq, length)]
    for a, b in ((0.0, 0.85), (0.15, 1.0)):
        views.append(resample_sequence(seq, length, np.linspace(a * t, b * t, length)))
    return views


class Boosted:
    """Gradient-boosted trees on the temporal statistics (bench only: a candidate, not a product classifier)."""

    def __init__(self, length: int):
        self.length = length

    def fit(self, pool, labels):
        from sklearn.ensemble import HistGradientBoostingClassifier

        x = np.stack([sequence_statistics(s, self.length) for s in pool])
        self.model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, max_leaf_nodes=15, random_state=0).fit(x, labels)
        return self

    def predict_proba(self, seqs):
        return self.model.predict_proba(np.stack([sequence_statistics(s, self.length) for s in seqs]))


def training_time(seqs, labels, classes, n: int = 100) -> None:
    """Seconds to train on `n` clips (real-dev's sequences repeated, landmarks cached), each classifier and 'auto'."""
    pick = np.arange(n) % len(seqs)
    train, y = [seqs[i] for i in pick[: int(n * 0.8)]], labels[pick[: int(n * 0.8)]]
    val, yv = [seqs[i] for i in pick[int(n * 0.8):]], labels[pick[int(n * 0.8):]]
    for kind in ("stats", "temporal", "auto"):
        start = time.perf_counter()
        train_pose_classifier(train, y, val, yv, classes, PoseSettings(classifier=kind), seed=0)
        print(f"  train on {n} clips ({len(train)} train + {len(val)} validation), classifier {kind}: "
              f"{time.perf_counter() - start:.1f} s", flush=True)


def without(prefixes: tuple[str, ...]):
    """A context in which the classifiers see the per-frame features named with `prefixes` (and their velocities) as 0."""
    import contextlib

    import snapaction.pose.classifier as classifier_module
    from snapaction.pose.features import feature_names, frame_features

    keep = np.array([not any(n.startswith(p) or n.startswith("velocity." + p) for p in prefixes) for n in feature_names()], np.float32)

    @contextlib.contextmanager
    def patched():
        classifier_module.frame_features = lambda seq: frame_features(seq) * keep
        try:
            yield
        finally:
            classifier_module.frame_features = frame_features

    return patched()


def loso(items, seqs, classes, settings: PoseSettings, kind: str, *, hands: bool = True, tta_shift: bool = False,
         mirror_tta: bool = True, drop: tuple[str, ...] = ()) -> dict:
    """Leave one subject out over every clip; returns correct, n, train seconds per fold, wrong clips."""
    if drop:
        with without(drop):
            return loso(items, seqs, classes, settings, kind, hands=hands, tta_shift=tta_shift, mirror_tta=mirror_tta)
    from snapaction.pose.training import training_pool

    labels = np.array([classes.index(c) for _, c, _ in items])
    subjects = sorted({s for _, _, s in items})
    seqs = [s if hands else no_hands(s) for s in seqs]
    correct, seconds, wrong = 0, [], []
    for subject in subjects:
        test = [i for i, (_, _, s) in enumerate(items) if s == subject]
        train = [i for i, (_, _, s) in enumerate(items) if s != subject]
        start = time.perf_counter()
        if kind == "boosted":
            pool, pool_labels = training_pool([seqs[i] for i in train], labels[train], settings, np.random.default_rng(0))
            model = Boosted(settings.sequence_length).fit(pool, pool_labels)
            models = [model]
        elif kind == "both":
            models = [train_pose_classifier([seqs[i] for i in train], labels[train], [], [], classes,
                                            dataclasses.replace(settings, classifier=k), seed=0)[0] for k in ("stats", "temporal")]
        else:
            models = [train_pose_classifier([seqs[i] for i in train], labels[train], [], [], classes,
                                            dataclasses.replace(settings, classifier=kind), seed=0)[0]]
        seconds.append(time.perf_counter() - start)
        for m in models:
            if hasattr(m, "mirror"):
                m.mirror = m.mirror and mirror_tta
        for i in test:
            views = shifted(seqs[i], settings.sequence_length) if tta_shift else [seqs[i]]
            proba = np.mean([m.predict_proba(views).mean(0) for m in models], axis=0)
            if int(np.argmax(proba)) == labels[i]:
                correct += 1
            else:
                wrong.append(items[i][0].name)
    return {"correct": correct, "n": len(items), "seconds": seconds, "wrong": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "snapaction-people-landmarks")
    parser.add_argument("--quick", action="store_true", help="no CNN rows")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--closeups", type=Path, default=DATA.parents[1] / "real-clips", help="folder of the shared real clips (timed only)")
    args = parser.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    import torch

    torch.set_num_threads(1)
    items = clips_of(args.data)
    classes = sorted({c for _, c, _ in items})
    subjects = sorted({s for _, _, s in items})
    print(f"{len(items)} clips, classes {classes}, subjects {subjects}", flush=True)
    if not args.skip_cost:
        print("cost, one core, 16-frame grid decoded at 360 px (the 1280x720 clips):", flush=True)
        cost([p for p, _, _ in items if probe(p).height == 720][:4])
        if args.closeups.is_dir():
            print("cost on the shared close-ups (bodies cut off, hands in view):", flush=True)
            cost([args.closeups / "apply_eye_makeup.avi", args.closeups / "arm_wrestling.mp4"])
    frame_counts = (16, 32)
    seqs = {}
    for frames in frame_counts:
        lms = landmarks(items, frames, args.cache)
        seen = [lm.seen() for lm in lms]
        print(f"  {frames} frames: clips with no body in any frame {sum(s['body'] == 0 for s in seen)}, with hands in any frame "
              f"{sum(s['hands'] > 0 for s in seen)}; body in {sum(s['body'] for s in seen)}/{sum(s['frames'] for s in seen)} frames, "
              f"hands in {sum(s['hands'] for s in seen)}", flush=True)
        seqs[frames] = [pose_sequence(lm) for lm in lms]
    labels = np.array([classes.index(c) for _, c, _ in items])
    training_time(seqs[32], labels, classes)
    base = PoseSettings()  # the default: 32 frames, resampled to 32 steps, logistic regression on statistics
    short = dataclasses.replace(base, frames=16, sequence_length=16)
    n = base.frames
    levers = [(f"default: stats, {n} frames, body+hands, mirror", dict(kind="stats"), n, base),
              ("16 frames", dict(kind="stats"), 16, short),
              ("body only (hands zeroed)", dict(kind="stats", hands=False), n, base),
              ("no joint positions (angles, posture, root, hands, seen flags)", dict(kind="stats", drop=POSITIONS), n, base),
              ("no posture features (torso tilt, body aspect)", dict(kind="stats", drop=("posture.",)), n, base),
              ("no seen flags (body / hand found per frame)", dict(kind="stats", drop=("body.seen", "left_hand.seen", "right_hand.seen")), n, base),
              ("no mirrored test view", dict(kind="stats", mirror_tta=False), n, base),
              ("time shifts at test (3 windows)", dict(kind="stats", tta_shift=True), n, base),
              ("stats, C = 0.1", dict(kind="stats"), n, dataclasses.replace(base, stats_c=0.1)),
              ("stats, no augmented copies", dict(kind="stats"), n, dataclasses.replace(base, augment_copies=0)),
              ("gradient-boosted trees", dict(kind="boosted"), n, base)]
    if not args.quick:
        levers += [("temporal 1D CNN", dict(kind="temporal"), n, base),
                   ("stats + CNN averaged", dict(kind="both"), n, base),
                   ("temporal 1D CNN, 16 frames", dict(kind="temporal"), 16, short)]
    print(f"\nleave one subject out, {len(items)} clips, every clip counted:")
    print("| lever (one change from the default) | correct | accuracy | 95 % interval | train s/fold | wrong |")
    print("|---|---|---|---|---|---|")
    for name, kw, frames, settings in levers:
        r = loso(items, seqs[frames], classes, settings, **kw)
        lo, hi = wilson(r["correct"], r["n"])
        print(f"| {name} | {r['correct']}/{r['n']} | {r['correct'] / r['n']:.3f} | {lo:.2f}-{hi:.2f} | "
              f"{statistics.mean(r['seconds']):.1f} | {', '.join(r['wrong'])} |", flush=True)


if __name__ == "__main__":
    main()
