"""Does pretraining on unlabeled footage pay? 10-shot held-out accuracy from scratch vs after `snapaction pretrain`.

Writes demo-like clips with its own seeds (four classes in two time-reversed
pairs, so only the order of the motion separates a pair): >= 500 unlabeled
clips, 10 labelled clips per class, a small validation set for choosing the
best epoch, and held-out test clips. Then:

1. pretrains a tiny VideoMAE on the unlabeled clips for --minutes, keeping a
   snapshot of the backbone after each of --snapshots minutes;
2. fine-tunes, with the same recipe and epochs, the same architecture from
   random weights (0 minutes), every snapshot and the final backbone;
3. fine-tunes the `scratch` preset (a small 3D CNN) on the same clips;
4. prints held-out accuracy against pretraining minutes, the gain over the
   same model from scratch, the comparison with the scratch preset, and
   writes the curve as a PNG.

  python bench/pretrain_gain.py                      # 30 minutes of pretraining (about 45 minutes in all on 2 cores)
  python bench/pretrain_gain.py --minutes 3 --snapshots 1 2 --ft-epochs 20   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def write_data(work: Path, unlabeled: int, shots: int, test: int, val: int, seed: int) -> dict[str, Path]:
    from snapaction.demo.dataset import write_demo_dataset

    per_class = math.ceil(unlabeled / 4)
    pool = write_demo_dataset(work / "unlabeled", clips_per_class=per_class, test_clips_per_class=1, seed=seed)
    labelled = write_demo_dataset(work / "labelled", clips_per_class=shots, test_clips_per_class=test, seed=seed + 1)
    validation = write_demo_dataset(work / "validation", clips_per_class=val, test_clips_per_class=1, seed=seed + 2)
    return {"unlabeled": pool.train_dir, "train": labelled.train_dir, "test": labelled.test_dir, "val": validation.train_dir}


def random_backbone(folder: Path, size: str, seed: int) -> Path:
    """The architecture pretraining starts from, with its random weights, saved as a backbone: the 0-minute point."""
    import torch
    from transformers import VideoMAEForPreTraining

    from snapaction.pretrain.loop import save_backbone, scratch_preprocessing
    from snapaction.pretrain.model import scratch_config

    torch.manual_seed(seed)
    config = scratch_config(size)
    save_backbone(VideoMAEForPreTraining(config), scratch_preprocessing(config), folder)
    return folder


def fine_tune(backbone: str, data: dict[str, Path], out: Path, args) -> dict:
    """Held-out accuracy of `backbone` fine-tuned on the labelled clips, and what it cost."""
    from snapaction.data.layout import scan
    from snapaction.evaluate import evaluate
    from snapaction.predict import Predictor
    from snapaction.training import TrainConfig, train

    started = time.perf_counter()
    lr = args.scratch_lr if backbone == "scratch" else args.ft_lr
    result = train(TrainConfig(data=str(data["train"]), val_data=str(data["val"]), out=str(out), backbone=backbone,
                               finetune="full", epochs=args.ft_epochs, patience=0, lr=lr, batch_size=8,
                               cache_dir=str(out.parent / "cache"), seed=args.seed))
    metrics = evaluate(Predictor.load(result.run_dir), scan(data["test"]).samples, batch_clips=8).metrics()
    return {"accuracy": float(metrics["accuracy"]), "val_accuracy": result.val_accuracy, "best_epoch": result.best_epoch,
            "fine_tune_s": round(time.perf_counter() - started, 1)}


def plot(rows: list[dict], scratch: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([r["minutes"] for r in rows], [r["accuracy"] for r in rows], "o-", label="tiny VideoMAE, fine-tuned after pretraining")
    ax.axhline(scratch["accuracy"], color="tab:orange", linestyle="--", label="scratch preset (3D CNN), no pretraining")
    ax.axhline(0.25, color="0.6", linestyle=":", label="chance")
    ax.set_xlabel("pretraining minutes (2 CPU cores)"), ax.set_ylabel("held-out accuracy, 10 clips per class")
    ax.set_ylim(0, 1.02), ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/snapaction-pretrain-gain"))
    parser.add_argument("--minutes", type=float, default=30.0, help="pretraining budget")
    parser.add_argument("--snapshots", type=float, nargs="*", default=[5, 10, 20], help="minutes at which the backbone is also fine-tuned")
    parser.add_argument("--unlabeled", type=int, default=500)
    parser.add_argument("--shots", type=int, default=10, help="labelled training clips per class")
    parser.add_argument("--test", type=int, default=50, help="held-out test clips per class")
    parser.add_argument("--val", type=int, default=5, help="validation clips per class (choose the best epoch; never the test clips)")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--target", default="norm-pixels")
    parser.add_argument("--mask-ratio", type=float, default=0.9)
    parser.add_argument("--decoder-ratio", type=float, default=0.5, help="dual masking: more steps in the same minutes")
    parser.add_argument("--lr", type=float, default=1.5e-3, help="pretraining peak learning rate")
    parser.add_argument("--ft-epochs", type=int, default=100)
    parser.add_argument("--ft-lr", type=float, default=5e-4)
    parser.add_argument("--scratch-lr", type=float, default=None, help="for the scratch preset (default: its own)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import torch

    from snapaction.pretrain.loop import pretrain
    from snapaction.pretrain.model import Objective
    from snapaction.pretrain.settings import PretrainConfig

    torch.set_num_threads(torch.get_num_threads())
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data = write_data(work, args.unlabeled, args.shots, args.test, args.val, args.seed)
    print(f"data in {work}: {args.unlabeled} unlabeled, {args.shots} labelled and {args.test} test clips per class", flush=True)

    rows = []
    zero = random_backbone(work / "backbone-0min", args.size, args.seed)
    rows.append({"minutes": 0.0, **fine_tune(str(zero), data, work / "ft-0min", args)})
    print(json.dumps(rows[-1]), flush=True)

    out = work / "backbone"
    objective = Objective(mask_ratio=args.mask_ratio, decoder_ratio=args.decoder_ratio, target=args.target)
    cfg = PretrainConfig(data=str(data["unlabeled"]), out=str(out), size=args.size, objective=objective, minutes=args.minutes,
                         epochs=100_000, lr=args.lr, snapshots=list(args.snapshots), preview_every=500, seed=args.seed)
    result = pretrain(cfg)
    print(f"pretrained {result.steps} steps in {result.seconds / 60:.1f} min, loss {result.first_loss:.4f} -> {result.final_loss:.4f}", flush=True)
    for minutes in args.snapshots:
        snapshot = out / "pretraining" / "snapshots" / f"{minutes:g}min"
        rows.append({"minutes": minutes, **fine_tune(str(snapshot), data, work / f"ft-{minutes:g}min", args)})
        print(json.dumps(rows[-1]), flush=True)
    rows.append({"minutes": round(result.seconds / 60, 1), **fine_tune(str(out), data, work / "ft-final", args)})
    print(json.dumps(rows[-1]), flush=True)
    scratch = fine_tune("scratch", data, work / "ft-scratch-preset", args)
    print(json.dumps({"scratch_preset": scratch}), flush=True)

    plot(rows, scratch, work / "pretrain_gain.png")
    base, best = rows[0]["accuracy"], rows[-1]["accuracy"]
    print()
    print(f"{'pretraining minutes':>20}  held-out accuracy  gain over 0 min")
    for r in rows:
        print(f"{r['minutes']:>20.1f}  {r['accuracy']:>17.3f}  {r['accuracy'] - base:>+15.3f}")
    print(f"{'scratch preset':>20}  {scratch['accuracy']:>17.3f}")
    print(f"pretraining {result.seconds / 60:.1f} min on {args.unlabeled} unlabeled clips: {base:.3f} -> {best:.3f} "
          f"({100 * (best - base):+.1f} points; goal +15); scratch preset {scratch['accuracy']:.3f} "
          f"({'beaten' if best > scratch['accuracy'] else 'not beaten'}); curve in {work / 'pretrain_gain.png'}")
    (work / "pretrain_gain.json").write_text(json.dumps({"rows": rows, "scratch_preset": scratch, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))


if __name__ == "__main__":
    main()
