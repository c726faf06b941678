"""16 frames from a 5-minute 720p clip with a keyframe every 10 s: ``--seek fast`` against exact reading and
against decoding every frame (the transformers documentation's way).

The clip is written once into bench/.cache: 5 minutes of 1280x720 at 25 fps,
H.264 (libx264, ultrafast, a low bitrate so it writes in seconds), a keyframe
every 250 frames (10 s) and nowhere else; a numbered bar pattern moves across it
so frames differ. Each way returns uint8 (16, 224-short-side) frames of uniform
sampling; the ratio is to decoding every frame, and the time error of the fast
frames (how far each keyframe is from the frame it stands in for) is printed.

    python bench/seek.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from decode import read_video_pyav  # noqa: E402
from snapaction.data.sampling import uniform_indices  # noqa: E402
from snapaction.video import probe, read_frames, read_frames_fast  # noqa: E402

WIDTH, HEIGHT, FPS, SECONDS, GOP = 1280, 720, 25, 300, 250
GOAL = 20.0


def write_clip(path: Path) -> None:
    import av

    x = np.arange(WIDTH)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={
            "preset": "ultrafast", "g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0", "b": "400k"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(SECONDS * FPS):
            row = ((x + 8 * i) // 64 % 2 * 160 + 40).astype(np.uint8)
            frame = np.broadcast_to(row[None, :, None], (HEIGHT, WIDTH, 3)).copy()
            frame[: HEIGHT // 4, :, 1] = i % 256
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    tmp.rename(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=HERE / ".cache")
    args = parser.parse_args(argv)
    import av

    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / ".gitignore").write_text("*\n")
    path = args.cache / "seek_5min_720p_gop10s.mp4"
    if not path.exists():
        print(f"writing {path.name} (once) ...", flush=True)
        started = time.perf_counter()
        write_clip(path)
        print(f"  {time.perf_counter() - started:.0f} s, {path.stat().st_size / 1e6:.1f} MB", flush=True)
    info = probe(path)
    indices = uniform_indices(info.num_frames, 16)

    def decode_all():
        with av.open(str(path)) as container:
            return read_video_pyav(container, indices)

    ways = {"every frame": decode_all, "exact": lambda: read_frames(path, indices, size=224),
            "fast": lambda: read_frames_fast(path, indices, size=224)}
    times = {name: [] for name in ways}
    ways["exact"](), ways["fast"]()  # warm-up: file cache, first-call costs (decoding everything again would take minutes)
    for _ in range(args.repeats):
        for name, way in ways.items():
            t = time.perf_counter()
            way()
            times[name].append(time.perf_counter() - t)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = np.array(sorted(e.timestamp for e in stream.index_entries if e.is_keyframe)) * float(stream.time_base)
    nearest = keys[np.abs(keys[None, :] - (indices / info.fps)[:, None]).argmin(1)]
    error = np.abs(nearest - indices / info.fps)
    reference = statistics.median(times["every frame"])
    print(f"{path.name}: {info.num_frames} frames, {info.width}x{info.height}, a keyframe every "
          f"{float(np.median(np.diff(keys))):.0f} s; 16 uniform frames {indices[1] - indices[0]} frames apart; median of {args.repeats}")
    for name in ways:
        s = statistics.median(times[name])
        print(f"  {name:<12} {s * 1000:9.0f} ms   {reference / s:6.1f}x decoding every frame")
    fast = reference / statistics.median(times["fast"])
    print(f"--seek fast: {fast:.1f}x decoding every frame (goal >= {GOAL:g}x: {'met' if fast >= GOAL else 'NOT met'}); "
          f"its frames lie {error.mean():.1f} s (mean), {error.max():.1f} s (max) from the exact ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
