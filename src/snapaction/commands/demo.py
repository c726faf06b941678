"""Run SnapAction end to end on generated data, with nothing to download.

Writes four classes of synthetic clips ("pick"/"drop" and "open"/"close",
each pair the same motion played in opposite directions, so only the order
of motion tells them apart), trains the small `scratch` model on them, scores
it on clips it never saw, and prints how to serve the result.
"""

from __future__ import annotations

import argparse

HELP = "generate demo clips, train the scratch model on them, and score it on held-out clips"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo", help="folder for the demo data, cache and run (default: demo)")
    parser.add_argument("--clips-per-class", type=int, default=40, help="training clips per class (default: 40)")
    parser.add_argument("--test-clips-per-class", type=int, default=25, help="held-out clips per class (default: 25)")
    parser.add_argument("--epochs", type=int, default=150, help="most epochs to train (default: 150)")
    parser.add_argument("--max-minutes", type=float, default=6.5, help="training time budget in minutes (default: 6.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and training (default: 0)")


def run(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    result = run_demo(args.out, args.clips_per_class, args.test_clips_per_class, args.epochs, args.max_minutes, args.seed)
    print(f"validation accuracy {result.val_accuracy:.3f}; held-out accuracy {result.test_accuracy:.3f} on {result.test_clips} clips it never saw")
    print(f"demo took {result.minutes:.1f} min; data in {result.data_dir}, run in {result.run_dir}")
    print(f"serve it: snapaction serve {result.run_dir}")
    return 0
