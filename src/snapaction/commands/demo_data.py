"""Write the synthetic four-class demo dataset.

Classes "pick" (an object lifted off a surface), "drop" (the same played
backwards: it falls), "open" (a shape that grows) and "close" (the same played
backwards: it shrinks). Any single frame is equally likely in both classes of a
pair; only the order of the motion tells them apart. Clips are H.264 .mp4 files
in OUT/train/<class>/ and OUT/test/<class>/ (held out, never shared with train).

OUT must be new, empty, or a demo dataset written before (its clips are then
replaced); SnapAction never writes over or deletes other files.
"""

from __future__ import annotations

import argparse
import time

from .. import config
from ..demo.dataset import DemoSpec

HELP = "writes the synthetic four-class demo dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="folder to write the dataset to")
    config.add_arguments(parser, DemoSpec, "dataset")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes writing clips in parallel (default: one per CPU core, at most 8)",
    )


def run(args: argparse.Namespace) -> int:
    from ..demo.dataset import write_demo_dataset

    spec = config.from_args(DemoSpec, args)
    start = time.monotonic()
    data = write_demo_dataset(args.out, **config.to_dict(spec), workers=args.workers)
    total = sum(sum(per_class.values()) for per_class in data.counts.values())
    print(
        f"Wrote {total} clips ({spec.size}x{spec.size}, {spec.num_frames} frames at {spec.fps} fps) "
        f"to {data.root.resolve()} in {time.monotonic() - start:.1f} s"
    )
    for split, folder in (("train", data.train_dir), ("test", data.test_dir)):
        counts = "  ".join(f"{kind} {n}" for kind, n in data.counts[split].items())
        print(f"  {split:<5}  {counts}  in {folder.resolve()}")
    print(f"Check it with: snapaction data check {data.train_dir}")
    return 0
