"""Classify clips with a trained run, or with a hub classification checkpoint and its own labels.

  snapaction predict RUN PATH [PATH ...]
  snapaction predict --backbone CHECKPOINT PATH [PATH ...]

PATHs are video files, frame folders (FOLDER/*.jpg), folders of clips, folders
of class folders, a Kaggle-style test folder of frame folders (ROOT/<id>/*.jpg),
or CSV manifests (path[,label,group]); a glob the shell leaves alone
('new/*.mp4') is expanded. Every clip gets an id: its file stem or folder name
(clips that share a name get their paths instead, and a warning says so). A prediction whose top class leads
the runner-up by less than 0.15 is marked unsure; a pose run's predictions also
say how many frames had a body and hands, and are unsure where both were found
in under a quarter of the frames (every clip that decodes is classified, nobody
in view or not, and gets a --csv row). Unreadable inputs are
skipped and listed at the end; the exit status is non-zero only when nothing
could be predicted.

  snapaction predict runs/kitchen clip.mp4 more-clips/
  snapaction predict runs/kitchen test/ --csv submission.csv     # header id,class; one row per clip, sorted by id
  snapaction predict runs/kitchen test/ --json probabilities.json --views 4 --crops 3
  snapaction predict --backbone MCG-NJU/videomae-base-finetuned-kinetics clip.mp4   # zero-shot, Kinetics labels
  snapaction predict runs/kitchen long.mp4 --timeline --stride 0.5 --timeline-dir timeline/

--timeline slides a window over each video and writes, per video, windows.csv
(probabilities per window), segments.csv (start, end, label, mean confidence of
the windows that agree at or above --threshold), timeline.json (both) and
timeline.png under --timeline-dir/<id>/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import add_arguments as add_options, from_args
from ..engines import Inference

HELP = "classify clips, folders or a Kaggle-style test folder; CSV/JSON output; timelines for long videos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = ("snapaction predict [options] RUN PATH [PATH ...]\n"
                    "       snapaction predict [options] --backbone CHECKPOINT PATH [PATH ...]")
    parser.add_argument("inputs", nargs="+", metavar="PATH", help="the run folder (left out with --backbone), then clips and folders")
    parser.add_argument("--backbone", default=None, help="predict with a classification checkpoint (hub id or folder) and its own labels, no run needed")
    parser.add_argument("--csv", default=None, metavar="FILE", help="write id,class (one row per clip, sorted by id)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write every clip's probabilities for every class")
    parser.add_argument("--top", type=int, default=3, help="classes printed per clip, most likely first; 0 prints none (default: %(default)s)")
    parser.add_argument("--views", type=int, default=1, help="temporal views per clip, averaged (test-time augmentation) (default: %(default)s)")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 3), help="spatial crops per view: 1 (centre) or 3 (left/centre/right) (default: %(default)s)")
    parser.add_argument("--batch-clips", type=int, default=4, help="clips run through the model together (default: %(default)s)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    add_options(parser, Inference, "inference")
    group = parser.add_argument_group("long videos")
    group.add_argument("--timeline", action="store_true", help="slide a window over each video and write per-window probabilities, segments and a PNG")
    group.add_argument("--window", type=float, default=None, help="seconds of video per window (default: the run's typical training clip, else 2)")
    group.add_argument("--stride", type=float, default=None, help="seconds between window starts (default: half a window)")
    group.add_argument("--threshold", type=float, default=0.5, help="lowest top-class probability a window needs to join a segment (default: %(default)s)")
    group.add_argument("--min-seconds", type=float, default=0.0, help="drop segments shorter than this (default: %(default)s)")
    group.add_argument("--timeline-dir", default="timeline", help="folder for the timelines, one subfolder per video (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from . import load_run
    from ..errors import ClipError, ConfigError, UsageError

    if not args.backbone and len(args.inputs) < 2:
        raise UsageError("pass a run folder and then at least one clip or folder (or --backbone CHECKPOINT and clips)")
    if not args.backbone:
        load_run(args.inputs[0], args.inputs[1:])  # a folder that is not a run is said at once, before the model libraries load
    else:
        from ..models.hub import check_backbone

        check_backbone(args.backbone)  # so is a checkpoint that is not on this machine
    from ..data.layout import collect_inputs
    from ..predict import load_predictor, write_csv, write_json

    if args.views < 1 or args.batch_clips < 1 or args.top < 0:
        raise ConfigError(f"--views and --batch-clips must be at least 1 and --top at least 0, got {args.views}, {args.batch_clips}, {args.top}")
    if not 0 <= args.threshold <= 1:
        raise ConfigError(f"--threshold is a probability in [0, 1], got {args.threshold:g}")
    if args.timeline and (args.csv or args.json):
        raise ConfigError("--csv and --json are for whole-clip predictions; with --timeline every video's windows and segments go to --timeline-dir")
    paths = args.inputs if args.backbone else args.inputs[1:]
    how = from_args(Inference, args)
    predictor = load_predictor(args.inputs[0], args.backbone, args.device, how.engine, how.precision, how.seek)  # with --backbone, inputs[0] is a clip
    clips, skipped = collect_inputs(paths)
    done = 0
    if args.timeline:
        from ..timeline import clip_timeline

        for clip_id, path in clips:
            folder = Path(args.timeline_dir) / clip_id
            try:
                windows, segments, _ = clip_timeline(predictor, path, folder, args.stride, args.window, args.threshold,
                                                     args.min_seconds, title=clip_id)
            except ClipError as err:
                skipped.append((str(path), err.reason))
                continue
            print(f"{clip_id}: {len(windows)} windows, {len(segments)} segment(s) -> {folder}/")
            for s in segments:
                print(f"  {s.start:8.2f} - {s.end:8.2f} s  {s.label}  {s.confidence:.3f}")
            if windows and not segments:
                highest = max(max(w.probabilities.values()) for w in windows)
                print(f"  no window reached --threshold {args.threshold:g} (the most confident window's top class had "
                      f"{highest:.2f}); lower --threshold to see segments, or look at {folder}/windows.csv")
            elif not windows:
                print("  no window could be classified (each was logged with the reason)")
            done += 1
    else:
        ids = {path: clip_id for clip_id, path in clips}
        rows = []
        for path, result in predictor.predict_many([p for _, p in clips], views=args.views, crops=args.crops, batch_clips=args.batch_clips):
            if isinstance(result, Exception):
                skipped.append((str(path), getattr(result, "reason", str(result))))
                continue
            rows.append((ids[path], path, result))
            if args.top:
                ranked = "  ".join(f"{c} {p:.3f}" for c, p in result.ranked()[: args.top])
                seen = result.seen
                print(f"{ids[path]}: {ranked}" + (f"  [body {seen['body']}/{seen['frames']}, hands {seen['hands']}/{seen['frames']} frames]" if seen else "")
                      + (f"  (unsure: {result.why_unsure()})" if result.unsure else ""), flush=True)
        if args.csv:
            write_csv(args.csv, [(clip_id, result) for clip_id, _, result in rows])
            print(f"wrote {len(rows)} row(s) to {args.csv}")
        if args.json:
            write_json(args.json, predictor, rows, args.views, args.crops, skipped)
            print(f"wrote probabilities of {len(rows)} clip(s) to {args.json}")
        done = len(rows)
    if skipped:
        print(f"\ncould not use {len(skipped)} input(s), skipped:", file=sys.stderr)
        for path, reason in skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
    if not done:
        print("snapaction: nothing could be predicted", file=sys.stderr)
        return 1
    return 0
