"""Curate unlabeled footage and write it as tar shards for self-supervised pretraining.

  snapaction shard footage/ --out shards/               # every clip under footage/, at any depth
  snapaction shard footage/ --out shards/ --dry-run     # only the curation report
  snapaction shard talks/ --out shards/ --cut-seconds 10   # long videos as 10 s segments

Curation leaves out, each listed with its reason: files that are not clips,
unreadable and too-short clips, byte-identical copies and near duplicates (the
first in natural order is kept and named) and static clips. Each kept clip
becomes one sample of --num-frames frames spread over it at short side --size,
stored as JPEG in OUT/shard-000000.tar, ... (WebDataset layout); OUT/manifest.json
is written last. A rerun with the same clips and settings writes nothing.
"""

from __future__ import annotations

import argparse

HELP = "curate unlabeled footage (duplicates, static, unreadable clips) and write it as tar shards for pretraining"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..pretrain.curate import NEAR_DUPLICATE_BITS, STATIC_THRESHOLD

    parser.add_argument("unlabeled", metavar="UNLABELED", help="folder of unlabeled clips (video files and frame folders, at any depth), "
                        "one video, or a CSV manifest")
    parser.add_argument("--out", metavar="SHARDS", default=None, help="folder to write the shards and manifest.json to "
                        "(new, empty, or shards written before); needed unless --dry-run")
    parser.add_argument("--num-frames", type=int, default=16, help="frames stored per clip, spread evenly over it (default: %(default)s)")
    parser.add_argument("--size", type=int, default=128, help="short side of the stored frames in pixels, aspect kept (default: %(default)s)")
    parser.add_argument("--clips-per-shard", type=int, default=64, help="clips in each tar shard (the last may hold fewer); "
                        "lower it when there are fewer shards than training processes x DataLoader workers (default: %(default)s)")
    parser.add_argument("--cut-seconds", type=float, default=None, metavar="S", help="cut videos longer than S seconds into "
                        "consecutive S-second segments, each curated and stored as its own clip (default: keep videos whole)")
    parser.add_argument("--min-frames", type=int, default=16, help="leave out clips (and segments) with fewer frames (default: %(default)s)")
    parser.add_argument("--static-threshold", type=float, default=STATIC_THRESHOLD, help="leave out clips whose frames change by "
                        "fewer grey levels (99th percentile of pixels, median over sampled frames) (default: %(default)s)")
    parser.add_argument("--near-duplicate-bits", type=int, default=NEAR_DUPLICATE_BITS, help="leave out a clip whose sampled frames' "
                        "64-bit perceptual hashes all lie within this many bits of a kept clip's (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="processes decoding clips in parallel "
                        "(default: one per CPU core, at most 8)")
    parser.add_argument("--dry-run", action="store_true", help="print the curation report only; write nothing")


def run(args: argparse.Namespace) -> int:
    from ..data.layout import check_root
    from ..errors import ConfigError

    check_root(args.unlabeled, one_clip=True)  # one video is footage too
    if not args.dry_run and not args.out:
        raise ConfigError("pass --out SHARDS, the folder to write the shards to (or --dry-run to see the curation report only)")
    from ..pretrain.shards import shard_unlabeled

    curation, manifest = shard_unlabeled(
        args.unlabeled, args.out, num_frames=args.num_frames, size=args.size, clips_per_shard=args.clips_per_shard,
        cut_seconds=args.cut_seconds, min_frames=args.min_frames, static_threshold=args.static_threshold,
        near_duplicate_bits=args.near_duplicate_bits, dry_run=args.dry_run, workers=args.workers,
    )
    print(curation.report())
    if manifest is not None:
        print(manifest.summary())
    return 0
