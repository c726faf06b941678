"""Classify clips with a trained run, or with a hub classification checkpoint and its own labels.

  snapaction predict RUN PATH [PATH ...]
  snapaction predict --backbone CHECKPOINT PATH [PATH ...]

PATHs are video files, frame folders (FOLDER/*.jpg), folders of clips, folders
of class folders, a Kaggle-style test folder of frame folders (ROOT/<id>/*.jpg),
or CSV manifests (path[,label,group]).
Every clip gets an id: its file stem or folder name. Unreadable inputs are
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

HELP = "classify clips, folders or a Kaggle-style test folder; CSV/JSON output; timelines for long videos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="PATH", help="the run folder (left out with --backbone), then clips and folders")
    parser.add_argument("--backbone", default=None, help="predict with a classification checkpoint (hub id or folder) and its own labels, no run needed")
    parser.add_argument("--csv", default=None, metavar="FILE", help="write id,class (one row per clip, sorted by id)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write every clip's probabilities for every class")
    parser.add_argument("--top", type=int, default=3, help="classes printed per clip, most likely first; 0 prints none (default: %(default)s)")
    parser.add_argument("--views", type=int, default=1, help="temporal views per clip, averaged (test-time augmentation) (default: %(default)s)")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 3), help="spatial crops per view: 1 (centre) or 3 (left/centre/right) (default: %(default)s)")
    parser.add_argument("--batch-clips", type=int, default=4, help="clips run through the model together (default: %(default)s)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    group = parser.add_argument_group("long videos")
    group.add_argument("--timeline", action="store_true", help="slide a window over each video and write per-window probabilities, segments and a PNG")
    group.add_argument("--window", type=float, default=None, help="seconds of video per window (default: the run's typical training clip, else 2)")
    group.add_argument("--stride", type=float, default=None, help="seconds between window starts (default: half a window)")
    group.add_argument("--threshold", type=float, default=0.5, help="lowest top-class probability a window needs to join a segment (default: %(default)s)")
    group.add_argument("--min-seconds", type=float, default=0.0, help="drop segments shorter than this (default: %(default)s)")
    group.add_argument("--timeline-dir", default="timeline", help="folder for the timelines, one subfolder per video (default: %(default)s)")


def collect_inputs(paths: list[str]) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(id, clip path) for every clip the paths name, sorted by id, and (path, reason) for what is not a clip.

    A path is a video file, a frame folder, a folder that `scan` reads (clips,
    class folders, or frame folders ROOT/<id>/*.jpg), or a CSV manifest. The id is the
    file stem or folder name; ids that would repeat get their path relative to
    the folder they were found in instead.
    """
    from ..dataset import scan
    from ..errors import DataError
    from ..video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, natural_key

    found: list[tuple[Path, Path]] = []  # (clip, the input it came from)
    skipped: list[tuple[str, str]] = []
    for arg in paths:
        path = Path(arg)
        if not path.exists():
            skipped.append((arg, "no such file or folder"))
        elif path.is_file() and path.suffix.lower() != ".csv":
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                found.append((path, path.parent))
            else:
                skipped.append((arg, f"not a video file (expected one of {', '.join(VIDEO_EXTENSIONS)})"))
        elif any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()) and not any(p.is_dir() for p in path.iterdir()):
            found.append((path, path.parent))  # the frames of one clip
        else:
            try:
                clips = scan(path)  # a folder of clips, of class folders or of frame folders; or a CSV manifest
            except DataError as err:
                skipped.append((arg, str(err)))
                continue
            found += [(s.path, path if path.is_dir() else path.parent) for s in clips.samples]
            skipped += [(str(p), r) for p, r in clips.skipped if r != "hidden"]
    seen: set[Path] = set()
    unique = []
    for clip, base in found:
        if clip.resolve() not in seen:
            seen.add(clip.resolve())
            unique.append((clip, base))
    ids = [clip.stem if clip.is_file() else clip.name for clip, _ in unique]
    repeated = {i for i in ids if ids.count(i) > 1}
    for k, (clip, base) in enumerate(unique):
        if ids[k] in repeated:
            try:
                ids[k] = clip.with_suffix("").relative_to(base).as_posix() if clip.is_file() else clip.relative_to(base).as_posix()
            except ValueError:
                ids[k] = clip.with_suffix("").as_posix()
    rows = sorted(zip(ids, (clip for clip, _ in unique)), key=lambda r: natural_key(r[0]))
    return rows, skipped


def load_predictor(args: argparse.Namespace):
    """The Predictor the options name, and the clip paths left over."""
    from ..errors import ConfigError
    from ..predict import Predictor
    from ..run import RUN_FILE

    if args.backbone:
        if (Path(args.inputs[0]) / RUN_FILE).is_file():
            raise ConfigError(f"{args.inputs[0]} is a run folder and --backbone names a checkpoint: pass one or the other")
        return Predictor.from_backbone(args.backbone, device=args.device), args.inputs
    if len(args.inputs) < 2:
        raise ConfigError("pass a run folder and then at least one clip or folder (or --backbone CHECKPOINT and clips)")
    return Predictor.load(args.inputs[0], device=args.device), args.inputs[1:]


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    if args.views < 1 or args.batch_clips < 1 or args.top < 0:
        raise ConfigError(f"--views and --batch-clips must be at least 1 and --top at least 0, got {args.views}, {args.batch_clips}, {args.top}")
    if args.timeline and (args.csv or args.json):
        raise ConfigError("--csv and --json are for whole-clip predictions; with --timeline every video's windows and segments go to --timeline-dir")
    predictor, paths = load_predictor(args)
    clips, skipped = collect_inputs(paths)
    if args.timeline:
        done = run_timelines(predictor, clips, skipped, args)
    else:
        done = run_clips(predictor, clips, skipped, args)
    if skipped:
        print(f"\ncould not use {len(skipped)} input(s), skipped:", file=sys.stderr)
        for path, reason in skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
    if not done:
        print("snapaction: nothing could be predicted", file=sys.stderr)
        return 1
    return 0


def run_clips(predictor, clips: list[tuple[str, Path]], skipped: list[tuple[str, str]], args: argparse.Namespace) -> int:
    """Predict every clip, print the ranked classes, write --csv/--json; returns how many were predicted."""
    import csv
    import json

    from ..run import atomic_write

    ids = {path: clip_id for clip_id, path in clips}
    rows = []
    for path, result in predictor.predict_many([p for _, p in clips], views=args.views, crops=args.crops, batch_clips=args.batch_clips):
        if isinstance(result, Exception):
            skipped.append((str(path), getattr(result, "reason", str(result))))
            continue
        rows.append((ids[path], path, result))
        if args.top:
            ranked = "  ".join(f"{c} {p:.3f}" for c, p in result.ranked()[: args.top])
            print(f"{ids[path]}: {ranked}", flush=True)
    if args.csv:
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["id", "class"])
        writer.writerows((clip_id, result.label) for clip_id, _, result in rows)
        atomic_write(Path(args.csv), buf.getvalue())
        print(f"wrote {len(rows)} row(s) to {args.csv}")
    if args.json:
        atomic_write(Path(args.json), json.dumps({
            "model": predictor.info(),
            "views": args.views,
            "crops": args.crops,
            "predictions": [{"id": clip_id, "path": str(path), "label": result.label, "probabilities": result.probabilities}
                            for clip_id, path, result in rows],
            "skipped": [{"path": p, "reason": r} for p, r in skipped],
        }, indent=1) + "\n")
        print(f"wrote probabilities of {len(rows)} clip(s) to {args.json}")
    return len(rows)


def run_timelines(predictor, clips: list[tuple[str, Path]], skipped: list[tuple[str, str]], args: argparse.Namespace) -> int:
    """Slide a window over every video, merge the windows into segments and write them; returns how many were done."""
    from ..errors import ClipError
    from ..timeline import merge_windows, write_timeline
    from ..video import probe

    done = 0
    for clip_id, path in clips:
        try:
            duration = probe(path).duration
            windows = predictor.timeline(path, stride_s=args.stride, window_s=args.window)
        except ClipError as err:
            skipped.append((str(path), err.reason))
            continue
        segments = merge_windows(windows, args.threshold, args.min_seconds, duration)
        folder = Path(args.timeline_dir) / clip_id
        write_timeline(folder, windows, segments, predictor.classes, title=f"{clip_id} ({duration:.1f} s)", threshold=args.threshold)
        print(f"{clip_id}: {len(windows)} windows, {len(segments)} segment(s) -> {folder}/")
        for s in segments:
            print(f"  {s.start:8.2f} - {s.end:8.2f} s  {s.label}  {s.confidence:.3f}")
        done += 1
    return done
