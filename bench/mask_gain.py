"""What masking buys: held-out accuracy of the scratch preset with and without ``--mask motion``.

1. Background-correlated clips (always): two classes told apart only by how
   a shape moves (across the frame, or up and down), over static textured
   backgrounds. In training (and validation) the background's palette goes
   with the class (warm for "across", cool for "updown"); in the held-out
   clips it is swapped, so a model that reads the background fails there and
   one that looks at what moves does not. The shape's colour and size, and
   the path's position and speed, are random and say nothing about the class.
2. With ``--demo``: the ordinary demo data (`snapaction.demo`), where masking
   should cost little, at a reduced size (``--demo-clips`` per class).

Both runs of a pair see the same clips, seed and number of epochs (a fixed
count, not a time budget: on a busy machine a budget would give the two runs
different epochs); the reference is the run without masks, and the line
prints the gain in points. The epochs are reduced (``--epochs``, default 12,
early stopping on) to keep the bench to a few minutes a pair on a 2-core CPU;
``--max-minutes`` adds a budget per run.

Run: ``python bench/mask_gain.py [--clips 24] [--epochs 12] [--demo | --demo-only]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import write_video  # noqa: E402

PALETTES = {"warm": ((150, 40, 20), (250, 170, 60)), "cool": ((20, 60, 140), (90, 200, 230))}
CLASSES = {"across": "warm", "updown": "cool"}
SWAPPED = {"warm": "cool", "cool": "warm"}


def background(rng: np.random.Generator, palette: str, size: int) -> np.ndarray:
    """uint8 (size, size, 3): blocks of colours between the palette's two ends, with a few random stripes."""
    low, high = (np.array(c, np.float32) for c in PALETTES[palette])
    cells = rng.random((size // 8, size // 8, 1))
    image = (low + cells * (high - low)).repeat(8, 0).repeat(8, 1)
    for _ in range(3):
        y = rng.integers(0, size - 6)
        image[y : y + 4] = low + rng.random() * (high - low)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def clip(rng: np.random.Generator, kind: str, palette: str, size: int = 64, frames: int = 16) -> np.ndarray:
    """uint8 (frames, size, size, 3): a disc moving across (left-right) or up and down over a still background."""
    still = background(rng, palette, size)
    radius = rng.uniform(5, 8)
    colour = rng.integers(0, 256, 3)
    start, end = rng.uniform(radius + 2, size * 0.35), rng.uniform(size * 0.65, size - radius - 2)
    if rng.random() < 0.5:
        start, end = end, start
    across = rng.uniform(radius + 4, size - radius - 4)
    yy, xx = np.mgrid[:size, :size]
    out = np.repeat(still[None], frames, 0)
    for t in range(frames):
        along = start + (end - start) * t / (frames - 1)
        cx, cy = (along, across) if kind == "across" else (across, along)
        out[t][(xx - cx) ** 2 + (yy - cy) ** 2 < radius**2] = colour
    return out


def write_background_data(root: Path, per_class: int, test_per_class: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    for kind, palette in CLASSES.items():
        for i in range(per_class):
            write_video(root / "train" / kind / f"{kind}_{i:03d}.mp4", clip(rng, kind, palette), codec="libx264")
        for i in range(test_per_class):
            write_video(root / "test" / kind / f"{kind}_{i:03d}.mp4", clip(rng, kind, SWAPPED[palette]), codec="libx264")
    return root / "train", root / "test"


def held_out_accuracy(train_dir: Path, test_dir: Path, out: Path, mask: str | None, epochs: int,
                      minutes: float | None) -> tuple[float, float, int]:
    """(held-out accuracy, seconds, epochs run) of a scratch run trained on `train_dir` with or without masks."""
    from snapaction.data.layout import scan
    from snapaction.evaluate import evaluate
    from snapaction.predict import Predictor
    from snapaction.training import TrainConfig, train

    started = time.perf_counter()
    result = train(TrainConfig(data=str(train_dir), out=str(out), backbone="scratch", epochs=epochs, max_minutes=minutes,
                               cache_dir=str(out.parent / "cache"), mask=mask, seed=0))
    metrics = evaluate(Predictor.load(result.run_dir), scan(test_dir).samples, batch_clips=8).metrics()
    return float(metrics["accuracy"]), time.perf_counter() - started, result.epochs_run


def compare(name: str, train_dir: Path, test_dir: Path, work: Path, epochs: int, minutes: float | None) -> None:
    plain, plain_s, plain_e = held_out_accuracy(train_dir, test_dir, work / f"{name}-plain", None, epochs, minutes)
    masked, masked_s, masked_e = held_out_accuracy(train_dir, test_dir, work / f"{name}-motion", "motion", epochs, minutes)
    print(f"{name}: held-out accuracy without masks {plain:.3f} ({plain_e} epochs, {plain_s:.0f} s), with --mask motion "
          f"{masked:.3f} ({masked_e} epochs, {masked_s:.0f} s, masks included): {100 * (masked - plain):+.1f} points "
          "against the run without masks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=24, help="training clips per class (a fifth are held for validation)")
    parser.add_argument("--test-clips", type=int, default=20, help="held-out clips per class, backgrounds swapped")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--max-minutes", type=float, default=None, help="time budget of each training run (default: none)")
    parser.add_argument("--demo", action="store_true", help="also compare on the ordinary demo data")
    parser.add_argument("--demo-clips", type=int, default=16)
    parser.add_argument("--demo-only", action="store_true", help="only the demo comparison (implies --demo)")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="mask-gain-"))
    budget = f" or {args.max_minutes:g} min" if args.max_minutes else ""
    print(f"scratch preset, at most {args.epochs} epochs{budget} per run (early stopping on)")
    if not args.demo_only:
        train_dir, test_dir = write_background_data(work / "background", args.clips, args.test_clips)
        print(f"background-correlated data: 2 classes x {args.clips} training clips (palette follows the class), "
              f"{args.test_clips} held-out per class (palette swapped)")
        compare("background-swapped", train_dir, test_dir, work, args.epochs, args.max_minutes)
    if args.demo or args.demo_only:
        from snapaction.demo.dataset import write_demo_dataset

        demo = write_demo_dataset(work / "demo", clips_per_class=args.demo_clips, test_clips_per_class=args.test_clips)
        print(f"demo data: 4 classes x {args.demo_clips} training clips, {args.test_clips} held-out per class")
        compare("demo", demo.train_dir, demo.test_dir, work, args.epochs, args.max_minutes)


if __name__ == "__main__":
    main()
