"""Pretrain a video backbone on unlabeled clips by masked autoencoding (VideoMAE, with VideoMAE V2's dual masking).

UNLABELED is a folder of clips (any layout, no labels; curated first: duplicates,
near-duplicates, static, too short and unreadable clips are left out and
listed) or a folder of shards written by `snapaction shard`. OUT becomes a
backbone folder that `from_pretrained` and `snapaction train --backbone OUT`
load like a hub checkpoint; OUT/pretraining/ keeps the report, loss.png,
reconstruction previews and the checkpoint --resume continues from.

Examples:
  snapaction pretrain footage/ --out backbones/kitchen --max-minutes 30        # tiny model from random weights
  snapaction pretrain footage/ --backbone MCG-NJU/videomae-base --out backbones/kitchen-base   # domain adaptation
  snapaction pretrain footage/ --out backbones/kitchen --decoder-ratio 0.5    # dual masking: half the decoder's work
  snapaction pretrain footage/ --out backbones/kitchen --resume               # continue after an interruption
  snapaction train clips/ --backbone backbones/kitchen --finetune full --out runs/kitchen

On several processes or machines (each reads its own shards):
  snapaction shard footage/ --out shards/
  accelerate launch --multi_gpu --num_machines 2 --machine_rank 0 --main_process_ip HOST --num_processes 16 \\
      -m snapaction pretrain shards/ --size base --out backbones/kitchen
"""

from __future__ import annotations

import argparse

HELP = "pretrain a backbone on unlabeled clips (masked autoencoding) and write it as a backbone folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import add_arguments as add_config
    from ..pretrain.model import Objective
    from ..pretrain.settings import PretrainConfig

    parser.add_argument("data", help="folder of unlabeled clips, or of shards written by `snapaction shard`")
    parser.add_argument("--out", required=True, help="the backbone folder to write (new, or the run's own with --resume)")
    parser.add_argument("--dry-run", action="store_true", help="curate the clips and print the report only: no shards, no model, nothing written")
    add_config(parser, PretrainConfig, "the model and the run", only=("backbone", "size", "epochs", "minutes", "resume"))
    add_config(parser, Objective, "masking and the reconstruction target")
    add_config(parser, PretrainConfig, "the recipe and the rest", leave_out=("backbone", "size", "epochs", "minutes", "resume"))


def run(args: argparse.Namespace) -> int:
    from ..config import from_args
    from ..models.hub import check_backbone
    from ..pretrain.model import Objective
    from ..pretrain.settings import SCRATCH, PretrainConfig

    if getattr(args, "backbone", SCRATCH) != SCRATCH:  # a missing checkpoint is said before anything loads
        check_backbone(args.backbone)
    cfg = from_args(PretrainConfig, args, objective=from_args(Objective, args))
    if args.dry_run:
        from ..pretrain.loop import curation_report

        print(curation_report(cfg))
        return 0
    from ..pretrain.loop import pretrain

    result = pretrain(cfg)
    if not result.main_process:
        return 0
    print(f"pretrained {result.steps} steps ({result.epochs} epochs, {result.seconds / 60:.1f} min; stopped by {result.stopped_by}): "
          f"loss {result.first_loss:.4f} -> {result.final_loss:.4f}; backbone written to {result.out}")
    print(f"fine-tune it: snapaction train CLIPS --backbone {result.out} --finetune full")
    return 0
