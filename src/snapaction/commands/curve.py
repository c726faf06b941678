"""How many clips do I need? Plot held-out accuracy against training clips per class.

Holds out clips once (a grouped split of DATA, or --test-data), then trains
models on 5, 10, 20, 40, ... clips per class (nested random draws, --seeds
models per size) and scores each on the same held-out clips, which play no
part in training or in choosing the epoch kept. Writes curve.png (mean,
±1 sd band, every seed), curve.csv and curve.json to --out, and says whether
more clips are still paying off.

Defaults: a pretrained backbone trains in probe mode (frozen backbone, linear
head on cached features; seconds per model once features are cached), 30
epochs, 3 seeds. With --backbone scratch each model is the small preset
trained in full for about 4000 training clips seen (20-200 epochs), at most
1.5 minutes: 12 models on the demo data take 10-20 minutes on 2 CPU cores.
Finished points are kept, so a rerun with the same --out continues an
interrupted curve.

  snapaction curve clips/ --backbone ./videomae-base
  snapaction curve demo/data/train --test-data demo/data/test --backbone scratch
"""

from __future__ import annotations

import argparse

HELP = "learning curve: held-out accuracy against training clips per class"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import add_arguments as add_config
    from ..training.curve import CurveConfig

    parser.add_argument("data", metavar="DATA", help="folder of class folders, or a CSV manifest path,label[,group]")
    add_config(parser, CurveConfig, "curve")


def run(args: argparse.Namespace) -> int:
    from ..config import from_args
    from ..training.curve import CurveConfig, learning_curve

    result = learning_curve(from_args(CurveConfig, args, data=args.data))
    print(result.summary)
    print(f"curve written to {result.out}/curve.png (points in curve.csv, curve.json)")
    return 0
