"""Speed of the pose model (``--backbone pose``) on one CPU core, and which classifier wins on synthetic data.

1. Landmark extraction on the shared real clips (../shared/data/real-clips or
   ``--clips DIR``), plus a 720p copy of drink_water.avi (the shared set has no
   720p clip with a person; the copy is scaled from 1080p and encoded as a 720p
   camera would, H.264 with a keyframe every 250 frames): ms per frame for decoding
   the frame grid alone and for decode + MediaPipe Pose, per clip and the median,
   against the 40 ms/frame goal.
2. Training seconds of both classifiers on synthetic stick-figure sequences,
   4 classes x 15 clips (default settings: 8 augmented copies + mirror).
3. Predict seconds per clip through `PosePipeline`: uncached (decode + pose +
   classifier) and cached (landmarks read from the cache).
4. With ``--compare``: held-out accuracy of both classifiers on harder synthetic
   data (more noise and missed frames) at several clips per class.
5. With ``--tracking``: MediaPipe's tracking mode against static mode on the grid.

Pinned to one core (``os.sched_setaffinity``) and ``torch.set_num_threads(1)``.
Run: ``python bench/pose.py [--frames 16] [--compare] [--tracking]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from snapaction.pose import PosePipeline, PoseSettings, train_pose_classifier  # noqa: E402
from snapaction.pose.features import pose_sequence  # noqa: E402
from snapaction.pose.landmarks import detect, grid_indices  # noqa: E402
from snapaction.pose.synthetic import synthetic_set  # noqa: E402
from snapaction.video import probe, read_frames  # noqa: E402

GOAL_MS = 40.0
CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-clips"
MOTIONS = ["raise_arms", "lower_arms", "squat", "wave"]


def make_720p(source: Path, out: Path) -> Path:
    """`source` scaled to 1280x720 and written as H.264 (libx264 defaults: keyframe every 250 frames, B-frames)."""
    import av

    info = probe(source)
    frames = read_frames(source, np.arange(info.num_frames), size=720)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=round(info.fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return out


def extraction(clips: list[Path], frames: int, size: int) -> None:
    print(f"\n1. landmark extraction, {frames} frames per clip, short side {size} (never upscaled), one core")
    detect(np.zeros((1, 64, 64, 3), np.uint8))  # build the graph once, as a long-lived process would
    totals, decodes = [], []
    for clip in clips:
        info = probe(clip)
        idx = grid_indices(info.num_frames, frames)
        scale = size if size < min(info.width, info.height) else None
        start = time.perf_counter()
        pixels = read_frames(clip, idx, size=scale, info=info)
        decode = (time.perf_counter() - start) / frames * 1000
        start = time.perf_counter()
        _, _, _, present = detect(pixels)
        pose = (time.perf_counter() - start) / frames * 1000
        totals.append(decode + pose)
        decodes.append(decode)
        print(f"   {clip.name:26s} {info.width}x{info.height}: decode {decode:6.1f}  pose {pose:6.1f}  total {decode + pose:6.1f} ms/frame"
              f"  ({(decode + pose) / GOAL_MS:.2f}x goal)  person in {present.sum()}/{frames}")
    med = statistics.median(totals)
    print(f"   median: decode {statistics.median(decodes):.1f}, total {med:.1f} ms/frame = {med / GOAL_MS:.2f}x the {GOAL_MS:.0f} ms/frame goal")


def training(settings: PoseSettings, per_class: int = 15) -> tuple:
    print(f"\n2. training on synthetic sequences, {len(MOTIONS)} classes x {per_class} clips (+ 10 validation clips per class)")
    rng = np.random.default_rng(0)
    train, ytr = synthetic_set(MOTIONS, per_class, rng, noise=0.01, missing=0.1)
    val, yva = synthetic_set(MOTIONS, 10, rng, noise=0.01, missing=0.1)
    train, val = [pose_sequence(s) for s in train], [pose_sequence(s) for s in val]
    start = time.perf_counter()
    model, report = train_pose_classifier(train, ytr, val, yva, MOTIONS, settings, seed=0)
    print(f"   both: {time.perf_counter() - start:.2f} s; per classifier {report.train_seconds}; pool {report.pool_size} sequences;"
          f" val accuracy {report.val_accuracy}; chosen {report.chosen}")
    return model


def predicting(model, clip: Path, settings: PoseSettings) -> None:
    print(f"\n3. predict one clip ({clip.name}) through PosePipeline, {settings.frames} frames")
    with tempfile.TemporaryDirectory() as cache_dir:
        uncached = PosePipeline(model, settings)
        start = time.perf_counter()
        uncached.predict(clip)
        first = time.perf_counter() - start
        cached = PosePipeline(model, settings, cache_dir)
        cached.predict(clip)
        start = time.perf_counter()
        for _ in range(5):
            cached.predict(clip)
        print(f"   uncached {first:.3f} s/clip, cached {(time.perf_counter() - start) / 5 * 1000:.1f} ms/clip")


def compare(settings: PoseSettings) -> None:
    print("\n4. held-out accuracy on harder synthetic data (noise 0.02, 15% frames missed), 40 test clips per class")
    rng = np.random.default_rng(1)
    test, yte = synthetic_set(MOTIONS, 40, rng, noise=0.02, missing=0.15)
    test = [pose_sequence(s) for s in test]
    for per_class in (3, 5, 10, 20):
        accs = {"stats": [], "temporal": []}
        for seed in range(2):
            train, ytr = synthetic_set(MOTIONS, per_class, np.random.default_rng(100 + seed), noise=0.02, missing=0.15)
            train = [pose_sequence(s) for s in train]
            _, report = train_pose_classifier(train, ytr, test, yte, MOTIONS, settings, seed=seed)
            for k, v in report.val_accuracy.items():
                accs[k].append(v)
        print(f"   {per_class:3d} clips/class: " + "  ".join(f"{k} {np.mean(v):.3f}" for k, v in accs.items()))


def tracking(clips: list[Path], frames: int, size: int) -> None:
    import mediapipe as mp

    print(f"\n5. static vs tracking mode on a {frames}-frame grid (max |difference| in x, y over frames found by both)")
    for clip in clips:
        info = probe(clip)
        pixels = read_frames(clip, grid_indices(info.num_frames, frames), size=size if size < min(info.width, info.height) else None, info=info)
        results = {}
        for static in (True, False):
            graph = mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1, smooth_landmarks=False)
            start = time.perf_counter()
            out = [graph.process(f).pose_landmarks for f in pixels]
            ms = (time.perf_counter() - start) / frames * 1000
            pts = np.array([[(p.x, p.y) for p in o.landmark] if o else np.full((33, 2), np.nan) for o in out])
            results[static] = (ms, pts)
            graph.close()
        both = ~np.isnan(results[True][1][:, 0, 0]) & ~np.isnan(results[False][1][:, 0, 0])
        diff = np.abs(results[True][1][both] - results[False][1][both]).max() if both.any() else float("nan")
        print(f"   {clip.name:26s} static {results[True][0]:5.1f} ms/f, {np.sum(~np.isnan(results[True][1][:, 0, 0]))} found;"
              f" tracking {results[False][0]:5.1f} ms/f, {np.sum(~np.isnan(results[False][1][:, 0, 0]))} found; max diff {diff:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=CLIPS)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=360)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--tracking", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import torch

    torch.set_num_threads(1)
    clips = sorted(p for p in args.clips.iterdir() if p.suffix in (".mp4", ".avi"))
    clips.append(make_720p(args.clips / "drink_water.avi", Path(tempfile.mkdtemp()) / "drink_water_720p.mp4"))
    settings = PoseSettings(frames=args.frames, decode_size=args.size)
    extraction(clips, args.frames, args.size)
    model = training(settings)
    predicting(model, clips[[c.name for c in clips].index("drink_water.avi")] if (args.clips / "drink_water.avi").exists() else clips[0], settings)
    if args.compare:
        compare(settings)
    if args.tracking:
        tracking(clips, args.frames, args.size)


if __name__ == "__main__":
    main()
