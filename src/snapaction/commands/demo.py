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
    parser.add_argument("--clips-per-class", type=int, default=40, help="clips per class for training, of which a fifth (8 of 40) are held for validation (default: 40)")
    parser.add_argument("--test-clips-per-class", type=int, default=25, help="held-out clips per class (default: 25)")
    parser.add_argument("--epochs", type=int, default=150, help="most epochs to train (default: 150)")
    parser.add_argument("--max-minutes", type=float, default=6.5, help="training time budget in minutes (default: 6.5)")
    parser.add_argument("--minutes", dest="max_minutes", type=float, help=argparse.SUPPRESS)  # the name pretrain had
    parser.add_argument("--seed", type=int, default=0, help="seed for data and training (default: 0)")


def run(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    result = run_demo(args.out, args.clips_per_class, args.test_clips_per_class, args.epochs, args.max_minutes, args.seed)
    import math

    trained = result.training
    kept = f"kept epoch {trained.best_epoch} of {trained.epochs_run}" if trained is not None else "kept the best epoch"
    if trained is not None and trained.stopped_by == "patience":
        kept += f" ({trained.epochs_asked} asked for; no better epoch came in the last {trained.epochs_run - trained.best_epoch})"
    print(f"{kept}, the best on validation: validation accuracy {result.val_accuracy:.3f}; "
          f"held-out accuracy {result.test_accuracy:.3f} on {result.test_clips} clips it never saw")
    if trained is not None and trained.stopped_by == "budget":
        pace = trained.seconds / max(trained.epochs_run, 1)
        wanted = math.ceil(trained.epochs_asked * pace / 60)
        print(f"note: this machine trains an epoch in {pace:.1f} s, so the {args.max_minutes:g}-minute budget ended training after "
              f"{trained.epochs_run} of {trained.epochs_asked} epochs (a quiet 2-core PC runs about 110 and reaches about 0.97); "
              f"for the full run: snapaction demo --out {args.out} --max-minutes {wanted}")
    print(f"demo took {result.minutes:.1f} min; data in {result.data_dir}, run in {result.run_dir}")
    print(f"pictures: {result.run_dir}/curves.png (training) and {result.run_dir}/eval-test/confusion_matrix.png (held-out clips);"
          f" the page shows both")
    print(f"serve it: snapaction serve {result.run_dir}")
    return 0
