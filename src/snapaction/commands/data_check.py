"""Check a dataset before training.

ROOT is a folder of clips by class (ROOT/<class>/*.mp4, or frame folders
ROOT/<class>/<video_id>/*.jpg), an unlabeled folder (ROOT/<id>/*.jpg), or a CSV
manifest with rows path,label[,group] (paths relative to the manifest).

Prints the layout found, usable clips per class with their frame count,
duration, frame-rate and size ranges, every file that cannot be used and why
(unreadable, no video stream, truncated, too few frames, not a video), and
warnings about class imbalance, byte-identical duplicates and small classes.

Exit status: 0 when at least two classes have usable clips; 1 otherwise, with
one sentence saying why.
"""

from __future__ import annotations

import argparse
import json
import sys

from .. import config
from ..data.check import CheckSettings

HELP = "report classes, clips per class, durations, sizes, and every unusable file with the reason"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="ROOT", help="dataset folder or CSV manifest to check")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table (the exit status is the same)")
    config.add_arguments(parser, CheckSettings, "checks")


def run(args: argparse.Namespace) -> int:
    from ..data.check import check

    report = check(args.root, config.from_args(CheckSettings, args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.layout:
        print(report.format())  # ends with the verdict
    else:  # nothing to report: the root itself is unusable
        print(f"snapaction: error: {report.reason}", file=sys.stderr)
    return 0 if report.ok else 1
