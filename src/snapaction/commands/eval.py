"""Judge a trained run on labelled clips it has not trained on.

DATA is a folder of class folders (DATA/<class>/*.mp4 or frame folders), a CSV
manifest (path,label[,group]), or, with --split, the video folder of UCF101 or
HMDB51 whose official split file picks the test clips:

  snapaction eval runs/kitchen clips-test/
  snapaction eval runs/ucf UCF-101/ --split ucfTrainTestlist/testlist01.txt
  snapaction eval runs/hmdb hmdb51/ --split testTrainMulti_7030_splits/ --split-number 1
  snapaction eval runs/kitchen clips-test/ --views 4 --crops 3   # TTA, reported beside single-view

The report folder (default RUN/eval-<name of DATA>) holds report.json (accuracy,
macro-F1, per-class precision/recall/F1, top-k, expected calibration error,
misclassified clips), per_class.csv, confusion_matrix.png + .json,
reliability.png, predictions.csv, misclassified.csv and summary.txt.
Unreadable clips are reported and skipped. A pose run classifies every clip that
decodes, nobody in view or not: they count in accuracy and F1, and the summary
says how many had no body in view.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import add_arguments as add_options, from_args
from ..engines import Inference

HELP = "accuracy, macro-F1, confusion matrix and calibration of a run on labelled clips"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by training")
    parser.add_argument("data", metavar="DATA", help="folder of class folders, CSV manifest, or (with --split) the UCF101/HMDB51 video folder")
    parser.add_argument("--split", default=None, help="official split file or folder: UCF101 testlist01.txt (classInd.txt beside it) or ucfTrainTestlist/, HMDB51 testTrainMulti_7030_splits/ or one *_test_split1.txt")
    parser.add_argument("--split-number", type=int, default=1, help="which official split (1-3) when --split is a folder (default: %(default)s)")
    parser.add_argument("--views", type=int, default=1, help="temporal views per clip for test-time augmentation; above 1 the single-view numbers are reported too (default: %(default)s)")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 3), help="spatial crops per view: 1 (centre) or 3 (left/centre/right) (default: %(default)s)")
    parser.add_argument("--out", default=None, help="report folder (default: RUN/eval-<name of DATA or split>)")
    parser.add_argument("--batch-clips", type=int, default=4, help="clips run through the model together (default: %(default)s)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    add_options(parser, Inference, "inference")


def run(args: argparse.Namespace) -> int:
    from . import load_run
    from ..data.layout import check_root

    load_run(args.run, [args.data])  # wrong folders are said at once, before the model libraries load
    if not args.split:
        check_root(args.data)
    from ..errors import ConfigError, DataError
    from ..data.splits import eval_samples
    from ..evaluate import check_report_folder, evaluate, training_overlap, write_eval_report
    from ..predict import Predictor

    if args.views < 1 or args.batch_clips < 1:
        raise ConfigError(f"--views and --batch-clips must be at least 1, got {args.views} and {args.batch_clips}")
    how = from_args(Inference, args)
    predictor = Predictor.load(args.run, device=args.device, engine=how.engine, precision=how.precision, seek=how.seek)
    samples, unusable = eval_samples(args.data, args.split, args.split_number)
    name = Path(args.split).stem if args.split and Path(args.split).is_file() else Path(args.data.rstrip("/")).stem
    out = Path(args.out) if args.out else Path(args.run) / f"eval-{name}"
    check_report_folder(out)  # before the clips are judged
    print(f"evaluating {args.run} on {len(samples)} clips of {args.data}" + (f" (split {args.split})" if args.split else ""), flush=True)
    overlap = training_overlap(args.run, samples)
    if overlap.get("train") or overlap.get("val"):
        print(f"warning: {overlap['train']} of these {overlap['clips']} clips are ones this run trained on and {overlap['val']} "
              "its validation clips (same content); the accuracy below is not a held-out figure: "
              "judge the run on clips it never saw", file=sys.stderr, flush=True)
    tta = args.views * args.crops > 1
    baseline = evaluate(predictor, samples, 1, 1, args.batch_clips) if tta else None
    result = evaluate(predictor, samples, args.views, args.crops, args.batch_clips)
    if not result.paths:
        path, reason = result.skipped[0] if result.skipped else (args.data, "no clips")
        raise DataError(f"none of the {len(samples)} clips could be read (first: {path}: {reason}); nothing to evaluate")
    result.skipped = unusable + result.skipped
    about = {"run": str(args.run), "data": str(args.data), "split": args.split, "backbone": predictor.backbone,
             "overlap_with_training": overlap}
    report = write_eval_report(out, result, baseline, about)
    if not (overlap.get("train") or overlap.get("val")):
        from ..card import record_held_out

        record_held_out(args.run, str(args.split or args.data), report)
    print(report["summary"])
    print(f"report written to {out}/ (confusion_matrix.png, report.json, misclassified.csv, ...)")
    return 0
