"""Foreground masks for every clip, computed once and cached, so that training and prediction never recompute them.

  snapaction mask clips/ --method motion                 # no weights: what moves against a still background
  snapaction mask clips/ --method person                 # MediaPipe's person segmentation (pip install "snapaction[pose]")
  snapaction mask clips/ --method sam2                   # SAM 2 (facebook/sam2.1-hiera-tiny, on disk)
  snapaction mask --preview clips/wave/01.mp4 --method person   # clips/wave/01.person-mask.png

Masks cover the grid of frames a training run samples from (--backbone,
--num-frames and --cache-frames as you give them to `snapaction train`), and
are cached under --cache-dir keyed by each clip's content and the settings:
a rerun computes nothing. `snapaction train DATA --mask METHOD` uses them
(and computes any that are missing).

Every clip is listed with its foreground share, its flicker (1 - the mean IoU
of consecutive frames' masks) and, for motion masks, the camera's motion (a
moving camera is measured and undone); empty, near-full, flickering and
camera-moving clips are flagged, with why. A manifest's `point` ("x y") or `box`
("x0 y0 x1 y1") column, in pixels of the clip, tells SAM 2 where to look.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "compute and cache foreground masks of every clip (sam2, person or motion), or preview one clip's"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..mask.settings import DEFAULT_SAM2, METHODS
    from ..models.settings import DEFAULT_BACKBONE
    from ..training.config import DEFAULT_CACHE

    parser.add_argument("data", nargs="?", default=None, help="folder of clips (by class, or unlabeled) or a CSV manifest")
    parser.add_argument("--method", required=True, choices=METHODS, help="how foreground is found")
    parser.add_argument("--preview", metavar="CLIP", default=None, help="write a PNG strip of CLIP's frames with the mask drawn, instead")
    parser.add_argument("--out", metavar="PNG", default=None, help="where --preview writes (default: CLIP with .METHOD-mask.png beside it)")
    parser.add_argument("--frames", type=int, default=6, help="frames in the --preview strip, spread over the grid of "
                        "frames that training masks (--cache-frames, 16 unless given) (default: %(default)s)")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help="the backbone you will train, whose frame count sets the grid (default: %(default)s)")
    parser.add_argument("--num-frames", type=int, default=None, help="as given to train (default: the backbone's own)")
    parser.add_argument("--cache-frames", type=int, default=None, help="as given to train: frames per clip masked (default: twice --num-frames, at least 16)")
    parser.add_argument("--mask-checkpoint", dest="checkpoint", default=DEFAULT_SAM2, help="SAM 2 checkpoint, hub id or folder (default: %(default)s)")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="SnapAction's cache folder, as given to train (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..mask.settings import Masking

    from ..mask import check_masking

    masking = Masking(args.method, checkpoint=args.checkpoint)
    check_masking(masking)
    if args.preview:
        from ..mask.masker import masker_for
        from ..mask.preview import write_preview

        if not 1 <= args.frames <= 32:
            raise ConfigError(f"--frames must be between 1 and 32, got {args.frames}")
        clip = Path(args.preview)
        out = Path(args.out) if args.out else clip.with_name(f"{clip.stem}.{args.method}-mask.png")
        grid = args.cache_frames or 16
        print(f"wrote {write_preview(clip, masker_for(masking, args.cache_dir), out, frames=args.frames, grid=grid)}")
        return 0
    if not args.data:
        raise ConfigError("pass the clips to mask (a folder or a CSV manifest), or --preview CLIP")
    from ..data.layout import check_root
    from ..mask.clips import mask_dataset, mask_grid

    check_root(args.data)
    grid = mask_grid(args.backbone, args.num_frames, args.cache_frames)
    report = mask_dataset(args.data, masking, args.cache_dir, grid)
    print(report.summary(args.method, per_clip=True))
    print(f"masks of {grid} frames per clip cached in {Path(args.cache_dir) / 'masks'}; train with: "
          f"snapaction train {args.data} --mask {args.method}")
    return 0
