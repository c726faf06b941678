"""Time to turn 16 sampled frames of a 720p H.264 clip into VideoMAE's input tensor.

SnapAction: ``Preprocessing(read_frames(path, indices, size=...))``, which seeks
to the keyframe before far frames, skips non-reference frames far from the
wanted ones, converts only the picked frames and scales them in swscale.

Reference: the approach of the transformers VideoMAE documentation example
(``read_video_pyav``): decode every frame from the start with PyAV until the
last wanted one, keep the sampled ones, convert them to RGB, then run the
VideoMAE image processor (the Pillow/numpy one) on them.

Both produce the float32 (16, 3, 224, 224) tensor for the same 16 frames
(uniform sampling, one frame from the middle of each of 16 equal segments),
with MCG-NJU/videomae-base's processor config. Clips (generated once, cached
in bench/.cache, which ignores itself in git):

(a) 10 s, 1280x720, 25 fps, H.264 from PyAV's libx264 with its defaults
    (x264 preset medium, CRF 23, keyframe every 250 frames), a textured
    background panning under moving discs;
(b) 5 minutes: (a)'s packets repeated 30 times without re-encoding, so it has
    the same keyframe spacing and per-frame decoding cost as a 5-minute encode;
(c) only when asked for (``--clips a b c``), for information: as (b) but
    encoded with a keyframe every second, as phones and cameras tend to write.

Prints the median of several interleaved runs of each (after a warm-up run on
the short clip; the honesty checks warm the long ones), both times and the
ratio. Run: ``python bench/decode.py [--clips a b c] [--repeats-short N] [--repeats-long N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from snapaction.preprocess import Preprocessing  # noqa: E402
from snapaction.data.sampling import uniform_indices  # noqa: E402
from snapaction.video import probe, read_frames  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
WIDTH, HEIGHT, FPS, SHORT_S, REPEAT_LONG = 1280, 720, 25, 10, 30
NUM_FRAMES = 16
GOALS = {"a": 2.0, "b": 20.0}

# MCG-NJU/videomae-base's preprocessor_config.json (271 bytes on the hub, saved in 2022)
VIDEOMAE_BASE_CONFIG = {
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "VideoMAEFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
    "size": 224,
}


# --- clips -------------------------------------------------------------------


def synthetic_frames(n: int, seed: int = 0):
    """uint8 (720, 1280, 3) frames: a detailed texture panning in two directions, five discs crossing it."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    pad, cell = 160, 6
    small = rng.integers(0, 256, ((HEIGHT + pad) // cell + 2, (WIDTH + pad) // cell + 2, 3), dtype=np.uint8)
    tex = Image.fromarray(small).resize((small.shape[1] * cell, small.shape[0] * cell), Image.BILINEAR)
    tex = np.asarray(tex.filter(ImageFilter.GaussianBlur(1.5)))
    yy, xx = np.mgrid[-40:41, -40:41]
    disc = yy**2 + xx**2 <= 40**2
    colours = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    for i in range(n):
        t = i / FPS
        x0, y0 = int(pad / 2 * (1 + np.sin(t * 0.9))), int(pad / 2 * (1 + np.cos(t * 0.6)))
        frame = tex[y0 : y0 + HEIGHT, x0 : x0 + WIDTH].copy()
        for k, colour in enumerate(colours):
            cx = int(WIDTH / 2 + (WIDTH / 2 - 60) * np.sin(t * (0.9 + 0.3 * k) + k))
            cy = int(HEIGHT / 2 + (HEIGHT / 2 - 60) * np.cos(t * (1.1 + 0.2 * k) + 2 * k))
            frame[cy - 40 : cy + 41, cx - 40 : cx + 41][disc] = colour
        yield frame


def encode_short(path: Path, options: dict | None = None) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options=options or {})  # libx264's own defaults otherwise
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in synthetic_frames(SHORT_S * FPS):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def repeat_clip(src: Path, dst: Path, times: int) -> None:
    """`src`'s packets `times` over, timestamps shifted: a long clip with `src`'s structure, no re-encoding."""
    import av

    with av.open(str(src)) as inp:
        packets = [p for p in inp.demux(inp.streams.video[0]) if p.size]
        span = max(p.pts + p.duration for p in packets) - min(p.pts for p in packets)
        with av.open(str(dst), "w") as out:
            stream = out.add_stream_from_template(inp.streams.video[0])
            for n in range(times):
                for p in packets:
                    copy = av.Packet(bytes(p))
                    copy.pts, copy.dts, copy.duration = p.pts + n * span, p.dts + n * span, p.duration
                    copy.time_base, copy.stream = p.time_base, stream
                    copy.is_keyframe = p.is_keyframe
                    out.mux(copy)


CLIPS = {"a": "a_10s_720p.mp4", "b": "b_5min_720p.mp4", "c": "c_5min_720p_gop1s.mp4"}


def clips(cache: Path, wanted: list[str]) -> dict[str, Path]:
    """The `wanted` clips, generated into `cache` the first time (``b`` is built from ``a``)."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / ".gitignore").write_text("*\n")
    paths = {key: cache / name for key, name in CLIPS.items()}
    for key, path in paths.items():
        if path.exists() or not (key in wanted or key == "a" and "b" in wanted):
            continue
        print(f"generating {path.name} (once) ...", flush=True)
        tmp = path.with_suffix(".tmp.mp4")
        if key == "a":
            encode_short(tmp)
        elif key == "b":
            repeat_clip(paths["a"], tmp, REPEAT_LONG)
        else:
            encode_short(tmp.with_suffix(".short.mp4"), {"g": str(FPS)})
            repeat_clip(tmp.with_suffix(".short.mp4"), tmp, REPEAT_LONG)
            tmp.with_suffix(".short.mp4").unlink()
        tmp.rename(path)
    return {key: paths[key] for key in wanted}


# --- the two ways ------------------------------------------------------------


def read_video_pyav(container, indices):
    """The transformers documentation's decoder: every frame from the start up to the last wanted one."""
    frames = []
    container.seek(0)
    start_index = indices[0]
    end_index = indices[-1]
    for i, frame in enumerate(container.decode(video=0)):
        if i > end_index:
            break
        if i >= start_index and i in indices:
            frames.append(frame)
    return np.stack([x.to_ndarray(format="rgb24") for x in frames])


def reference_frames(path: Path, indices: np.ndarray) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return read_video_pyav(container, indices)


def reference(path: Path, indices: np.ndarray, processor, frames: np.ndarray | None = None):
    video = reference_frames(path, indices) if frames is None else frames
    return processor(list(video), return_tensors="pt").pixel_values[0]


def snapaction(path: Path, indices: np.ndarray, prep: Preprocessing):
    return prep(read_frames(path, indices, size=prep.size))


def image_processor(folder: Path):
    try:  # transformers >= 5 names the Pillow/numpy processor explicitly
        from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil as cls
    except ImportError:  # before 5, VideoMAEImageProcessor is the Pillow/numpy one
        from transformers import VideoMAEImageProcessor as cls
    return cls.from_pretrained(folder)


# --- timing ------------------------------------------------------------------


def median_times(fns: dict, repeats: int, warm_up: bool) -> dict[str, tuple[float, float]]:
    """name -> (median wall seconds, median CPU seconds of all the process's threads)."""
    for fn in fns.values() if warm_up else ():  # file cache, first-call costs
        fn()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for name, t in times.items()}


def keyframes(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = sorted(e.timestamp for e in stream.index_entries if e.is_keyframe)
        if len(keys) < 2:
            return "one keyframe"
        return f"a keyframe every {float(np.median(np.diff(keys)) * stream.time_base):.1f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats-short", type=int, default=9, help="timed runs of each way on clip (a)")
    parser.add_argument("--repeats-long", type=int, default=3, help="timed runs of each way on clips (b) and (c)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the generated clips are kept")
    parser.add_argument("--clips", nargs="+", choices=sorted(CLIPS), default=["a", "b"], help="which clips to time (c: 5 min, a keyframe every second)")
    args = parser.parse_args(argv)

    import av
    import transformers

    paths = clips(args.cache, args.clips)
    config_dir = args.cache / "videomae-base"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "preprocessor_config.json").write_text(json.dumps(VIDEOMAE_BASE_CONFIG, indent=2, sort_keys=True) + "\n")
    prep = Preprocessing.from_backbone(config_dir)
    processor = image_processor(config_dir)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, PyAV {av.__version__}, "
        f"transformers {transformers.__version__} ({type(processor).__name__})"
    )

    runs = [("a", "10 s 720p", args.repeats_short), ("b", "5 min 720p", args.repeats_long), ("c", "5 min 720p, 1 s GOP", args.repeats_long)]
    for key, label, repeats in runs:
        if key not in paths:
            continue
        path = paths[key]
        info = probe(path)
        indices = uniform_indices(info.num_frames, NUM_FRAMES)
        # honesty checks, untimed: the same frames, and tensors of the same shape and values
        raw = reference_frames(path, indices)
        np.testing.assert_array_equal(read_frames(path, indices), raw)
        ours, ref = snapaction(path, indices, prep), reference(path, indices, processor, raw)
        assert ours.shape == ref.shape == (NUM_FRAMES, 3, 224, 224), (ours.shape, ref.shape)
        diff = (ours - ref).abs()

        ways = {"snapaction": lambda: snapaction(path, indices, prep), "reference": lambda: reference(path, indices, processor)}
        t = median_times(ways, repeats, warm_up=key == "a")
        (ours_s, ours_cpu), (ref_s, ref_cpu) = t["snapaction"], t["reference"]
        ratio = ref_s / ours_s
        goal = f"goal >= {GOALS[key]:g}x: {'met' if ratio >= GOALS[key] else 'NOT met'}" if key in GOALS else "(no goal)"
        print(
            f"({key}) {label}: {info.num_frames} frames, {keyframes(path)}, "
            f"frames {indices[0]}..{indices[-1]}, median of {repeats}\n"
            f"    snapaction {ours_s * 1000:8.1f} ms   reference {ref_s * 1000:8.1f} ms   ratio {ratio:5.1f}x   {goal}\n"
            f"    CPU time (all threads; less sensitive to other load): snapaction {ours_cpu * 1000:.0f} ms, "
            f"reference {ref_cpu * 1000:.0f} ms, ratio {ref_cpu / ours_cpu:.1f}x\n"
            f"    same 16 frames (decoded RGB identical); tensors differ by mean {diff.mean():.4f}, max {diff.max():.3f} "
            "(swscale's scaling in the decoder vs Pillow's on full frames)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
