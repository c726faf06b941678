"""Look at what the pose model sees in a clip: the skeleton it finds, drawn on the frames.

  snapaction pose --preview clip.mp4                   # writes clip.pose.png beside the clip
  snapaction pose --preview clip.mp4 --out strip.png --frames 8

Landmarks come from MediaPipe Pose, which ships inside the mediapipe wheel
(pip install "snapaction[pose]"), and the hands MediaPipe Hands finds (left blue,
right orange); frames where no body is found get a red border saying so, and
the command prints how many frames had a body and how many had hands.
Train a pose model with `snapaction train DATA --backbone pose`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "draw the skeleton the pose model finds in a clip (a PNG strip of frames)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preview", required=True, metavar="CLIP", help="video file or frame folder to draw the skeleton of")
    parser.add_argument("--out", default=None, metavar="PNG", help="where to write the strip (default: CLIP with .pose.png beside it)")
    parser.add_argument("--frames", type=int, default=6, help="frames spread over the clip in the strip (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..pose.landmarks import require_mediapipe
    from ..pose.preview import preview

    if not 1 <= args.frames <= 32:
        raise ConfigError(f"--frames must be between 1 and 32, got {args.frames}")
    require_mediapipe()
    clip = Path(args.preview)
    out = Path(args.out) if args.out else clip.with_suffix(".pose.png")
    path, seen = preview(clip, out, frames=args.frames)
    print(f"wrote {path}: a body in {seen['body']} and hands in {seen['hands']} of the {seen['frames']} frames"
          + ("" if seen["body"] == seen["frames"] else " (frames without a body have a red border)"))
    return 0
