"""Seconds per clip of each masking method on the CPU (and a GPU when one is at hand), at the real geometry.

Each method masks the training grid (16 frames spread over the clip, as the
scratch preset's runs do) of the shared real clips (../shared/data/real-clips
or ``--clips DIR``), decoded with the short side at `Masking.size` (160 px),
uncached: decode + masks, what `snapaction mask` spends on a clip once. The
reference is decoding that grid alone, measured in the same run; each line
prints the median seconds per clip and its ratio to the reference.

``sam2`` runs `Sam2VideoModel` at the geometry of facebook/sam2.1-hiera-tiny
(transformers' default `Sam2VideoConfig`: Hiera-T, 1024x1024 input) with
random weights, since no checkpoint can be downloaded here: the time is the
real model's, the masks are not. It is slow on a CPU, so it runs on
``--sam2-clips`` clips (default 2). Prompts are found automatically (a person
box from MediaPipe, else what moves most), as in training.

Run: ``python bench/mask.py [--frames 16] [--sam2-clips 2] [--methods motion person sam2]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from snapaction.data.sampling import on_grid  # noqa: E402
from snapaction.mask.masker import Masker  # noqa: E402
from snapaction.mask.settings import MASK_SIZE, Masking  # noqa: E402
from snapaction.video import probe, read_frames  # noqa: E402

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-clips"

def decode_seconds(clip: Path, frames: int) -> float:
    started = time.perf_counter()
    info = probe(clip)
    size = MASK_SIZE if MASK_SIZE < min(info.width, info.height) else None
    read_frames(clip, on_grid(info.num_frames, frames), size=size, info=info)
    return time.perf_counter() - started

def mask_seconds(clip: Path, masking: Masking, frames: int) -> tuple[float, float]:
    """(seconds to decode and mask the grid of one clip with no cache, mean foreground share)."""
    with tempfile.TemporaryDirectory() as cache:
        masker = Masker(masking, cache)
        started = time.perf_counter()
        masks = masker.grid_masks(clip, frames)
        return time.perf_counter() - started, float(masks.mean())

def tiny_geometry_checkpoint(folder: Path) -> Path:
    """Random weights at facebook/sam2.1-hiera-tiny's geometry, saved as the hub checkpoint is."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    torch.manual_seed(0)
    model = Sam2VideoModel(Sam2VideoConfig())
    print(f"sam2: random weights, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
          f"{model.config.image_size}x{model.config.image_size} input (the real tiny checkpoint: 38.9M)")
    model.save_pretrained(folder)
    Sam2VideoVideoProcessor().save_pretrained(folder)
    return folder

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=Path, default=CLIPS)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--sam2-clips", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["motion", "person", "sam2"])
    args = parser.parse_args()
    import torch

    clips = sorted(p for p in args.clips.iterdir() if p.suffix in (".mp4", ".avi"))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{len(clips)} clips from {args.clips}; grid of {args.frames} frames, short side {MASK_SIZE} px; "
          f"torch threads {torch.get_num_threads()}; devices {devices}")
    for clip in clips:  # warm the decoders and the page cache before anything is timed
        decode_seconds(clip, args.frames)
    reference = statistics.median(decode_seconds(c, args.frames) for c in clips)
    print(f"reference: decoding the grid alone, median {reference:.3f} s per clip")
    for method in args.methods:
        masking, chosen = Masking(method), clips
        if method == "sam2":
            folder = tiny_geometry_checkpoint(Path(tempfile.mkdtemp()) / "sam2-tiny-geometry")
            masking = Masking("sam2", checkpoint=str(folder))
            chosen = clips[: args.sam2_clips]
            mask_seconds(chosen[0], masking, 2)  # load the model once, outside the timing
        elif method == "person":
            mask_seconds(clips[0], masking, 2)  # build MediaPipe's graph once, outside the timing
        for device in devices if method == "sam2" else ["cpu"]:
            if device == "cuda":
                from snapaction.mask import sam2 as sam2_module

                for model, _ in sam2_module._loaded.values():
                    model.to("cuda")
            times, shares = [], []
            for clip in chosen:
                seconds, share = mask_seconds(clip, masking, args.frames)
                times.append(seconds)
                shares.append(share)
                print(f"  {method:6s} {device:4s} {clip.name:24s} {seconds:7.3f} s  foreground {share:6.1%}")
            median = statistics.median(times)
            print(f"{method} on {device}: median {median:.3f} s per clip of {args.frames} frames "
                  f"({median / args.frames * 1000:.0f} ms a frame), {median / reference:.1f}x the decode reference, "
                  f"{len(chosen)} clips")

if __name__ == "__main__":
    main()
