"""Fine-tune a video backbone on your clips and write a run folder.

DATA is a folder of class folders (DATA/<class>/*.mp4 or DATA/<class>/<clip>/*.jpg)
or a CSV manifest (path,label[,group]). The run folder (--out) holds the
trained weights, snapaction.json, metrics.csv, report.json and curves.png;
`snapaction predict`, `eval` and `serve` need nothing else.

Examples:
  snapaction train clips/ --out runs/kitchen                 # LoRA on VideoMAE-base
  snapaction train clips/ --backbone scratch --out runs/demo  # small model, no download
  snapaction train clips/ --backbone ./my-pretrained --finetune probe
  snapaction train clips/ --backbone pose --out runs/gym      # people: body landmarks, no download
  snapaction train --out runs/kitchen --resume                # continue an interrupted run with its own options
"""

from __future__ import annotations

import argparse

HELP = "fine-tune a backbone on your clips and write a run folder"
ESSENTIALS = ("out", "backbone", "finetune", "epochs", "max_minutes", "resume")
"""The options most runs set, listed first in --help."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..augment import Augment
    from ..config import add_arguments as add_config
    from ..data.sampling import Sampling
    from ..models.settings import LoraSettings
    from ..pose.settings import PoseSettings
    from ..training.config import TrainConfig

    parser.usage = ("snapaction train DATA [--out RUN] [--backbone ID|FOLDER|scratch|pose] [options]\n"
                    "       snapaction train --out RUN --resume        (all options: below, the essentials first)")
    parser.add_argument("data", nargs="?", default=None,
                        help="folder of class folders, or a CSV manifest path,label[,group] (with --resume: the run's own, when left out)")
    add_config(parser, TrainConfig, "the essentials", only=ESSENTIALS)
    add_config(parser, Sampling, "frame sampling (default: the backbone's own)")
    add_config(parser, Augment, "augmentation (training only)")
    add_config(parser, LoraSettings, "LoRA (for --finetune lora)")
    add_config(parser, PoseSettings, "pose model (for --backbone pose)")
    add_config(parser, TrainConfig, "the training recipe and the rest", leave_out=ESSENTIALS)


def run(args: argparse.Namespace) -> int:
    from ..data.layout import check_root

    from ..models.hub import check_backbone
    from ..training.config import train_config

    from ..mask import check_masking

    cfg = train_config(vars(args))
    check_backbone(cfg.backbone)
    check_masking(cfg.masking)  # a missing backbone or extra, then wrong paths, are said at once,
    for where in (cfg.data, cfg.val_data):  # before the model libraries load and the clips are read
        if where:
            check_root(where)
    from ..training import train

    result = train(cfg)
    ran = f"{result.epochs_run} epochs run"
    if result.stopped_by == "budget":
        ran += f" of the {result.epochs_asked} asked for: --max-minutes ended it"
    elif result.stopped_by == "patience":
        ran += f" of {result.epochs_asked}: no better epoch for --patience epochs"
    if result.already_finished:
        import shlex

        further = (f"--max-minutes {2 * cfg.max_minutes:g}" if result.stopped_by == "budget"
                   else f"--epochs {result.epochs_asked + max(5, result.epochs_asked // 2)}")
        print(f"{result.run_dir} had finished training ({ran}), best validation accuracy {result.val_accuracy:.3f} at epoch "
              f"{result.best_epoch}; nothing was changed. To train it further, ask for more (a larger {further.split()[0]}): "
              f"snapaction train --out {shlex.quote(str(result.run_dir))} --resume {further}")
        return 0
    print(
        f"best validation accuracy {result.val_accuracy:.3f} at epoch {result.best_epoch} ({ran}; "
        f"{result.seconds / 60:.1f} min); run written to {result.run_dir}"
    )
    if result.skipped:
        print(f"{len(result.skipped)} clip(s) skipped (listed in {result.run_dir}/snapaction.json):")
        for path, reason in result.skipped:
            print(f"  {path}: {reason}")
    print(f"try it: snapaction serve {result.run_dir}")
    return 0
