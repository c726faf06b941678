"""How many clips do I need? A learning curve: accuracy on fixed held-out clips against clips per class.

`learning_curve(CurveConfig)` holds out clips once (a grouped, stratified
split of the data, or `test_data`), then for every size n (5, 10, 20, 40,
... clips per class) and every seed draws n clips of each class from the
rest, trains a model on them and scores it on the held-out clips. Draws are
nested: for one seed, the clips of size 10 include those of size 5, so the
curve shows what adding clips does rather than which clips were drawn.

The held-out clips play no part in training: each model trains for a set
number of epochs with no early stopping, keeps the epoch that fits its own
training clips best, and only then is scored on the held-out clips, so
every point is an honest estimate. Finished points are saved as they come
and skipped on a rerun, so an interrupted curve continues where it stopped.

Models: probe mode (frozen backbone, linear head on cached features: seconds
per model once the features are cached) for a pretrained backbone; with
``--backbone scratch`` full training of the small preset for about the same
number of training clips seen at every size (the preset's `curve_clips_seen`,
so small sizes get more epochs), bounded by `max_minutes` per model.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import check, option, same_as
from ..errors import DataError
from ..models.settings import FINETUNE_MODES
from ..models.presets import PRESETS, preset
from .config import TrainConfig

log = logging.getLogger(__name__)

FIRST_SIZE = 5
_SCRATCH = PRESETS["scratch"]  # the preset the help texts quote
PROBE_EPOCHS = 30


@dataclass(frozen=True)
class CurveConfig:
    """What `snapaction curve` trains and where it writes."""

    data: str = ""
    """Labelled clips: a folder of class folders or a CSV manifest (positional on the command line)."""
    out: str = option("runs/curve", "folder for curve.csv, curve.json, curve.png and the per-point runs")
    test_data: str | None = option(None, "held-out clips every model is scored on (default: a grouped split of DATA)")
    test_fraction: float = option(0.3, "share of DATA's clips (whole source videos) held out when --test-data is not given")
    sizes: list[int] | None = option(None, "clips per class to train on (default: 5, 10, 20, 40, ... and then all clips)")
    seeds: int = option(3, "models per size, each on its own draw of clips")
    backbone: str = same_as(TrainConfig, "backbone")
    finetune: str | None = option(None, "how each model trains (default: probe, or full for scratch)", FINETUNE_MODES)
    epochs: int | None = option(None, f"epochs per model (default: {PROBE_EPOCHS} for probe; for scratch about {_SCRATCH.curve_clips_seen} clips seen, {_SCRATCH.curve_epochs[0]}-{_SCRATCH.curve_epochs[1]} epochs)")
    max_minutes: float | None = option(None, f"time budget per model (default: none for probe, {_SCRATCH.curve_minutes} for scratch)")
    batch_size: int = same_as(TrainConfig, "batch_size")
    cache_dir: str = same_as(TrainConfig, "cache_dir")
    keep_runs: bool = option(False, "keep every point's run folder (by default only its metrics are kept)")

    def __post_init__(self):
        problems = []
        if not self.data:
            problems.append("no data given: pass a folder of class folders (or a CSV manifest)")
        if not 0 < self.test_fraction < 1:
            problems.append(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.sizes is not None and (not self.sizes or min(self.sizes) < 1):
            problems.append(f"sizes must be clip counts of at least 1, got {self.sizes}")
        if self.seeds < 1:
            problems.append(f"seeds must be at least 1, got {self.seeds}")
        if self.epochs is not None and self.epochs < 1:
            problems.append(f"epochs must be at least 1, got {self.epochs}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            problems.append(f"max_minutes must be positive, got {self.max_minutes}")
        named = preset(self.backbone)
        if named and self.finetune and self.finetune not in named.finetune:
            problems.append(f"--finetune {self.finetune} needs pretrained weights; with --backbone {named.name} the models train in full")
        check(problems, "curve configuration")

    @property
    def mode(self) -> str:
        named = preset(self.backbone)
        return self.finetune or (named.default_finetune if named else "probe")

    def model_epochs(self, clips: int) -> int:
        """Epochs for a model trained on `clips` clips in all."""
        if self.epochs:
            return self.epochs
        named = preset(self.backbone)
        if named is None:
            return PROBE_EPOCHS
        low, high = named.curve_epochs
        return int(min(high, max(low, math.ceil(named.curve_clips_seen / clips))))

    @property
    def model_minutes(self) -> float | None:
        if self.max_minutes is not None:
            return self.max_minutes
        named = preset(self.backbone)
        return named.curve_minutes if named else None


@dataclass
class CurveResult:
    """The points of a learning curve and what they say."""

    classes: list[str]
    held_out: int
    """Clips every model was scored on."""
    points: list[dict]
    """One per model: size, seed, accuracy and macro_f1 on the held-out clips, train_accuracy, epochs, seconds."""
    summary: str
    out: Path

    def by_size(self) -> list[dict]:
        """Per size: mean and standard deviation of the accuracy over seeds, and every seed's value."""
        sizes = sorted({p["size"] for p in self.points})
        rows = []
        for n in sizes:
            acc = np.array([p["accuracy"] for p in self.points if p["size"] == n])
            rows.append({"size": n, "mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                         "min": float(acc.min()), "max": float(acc.max()), "seeds": len(acc), "values": acc.tolist()})
        return rows


def default_sizes(available: int) -> list[int]:
    """5, 10, 20, 40, ... clips per class while there are that many, then every clip when that is clearly more."""
    sizes = []
    n = FIRST_SIZE
    while n <= available:
        sizes.append(n)
        n *= 2
    if not sizes or available >= 1.25 * sizes[-1]:
        sizes.append(available)
    return sizes


def nested_draws(pool, seed: int) -> dict[str, list]:
    """Every class's clips of `pool` in a random order fixed by `seed`: the first n are the draw of size n."""
    rng = np.random.default_rng([seed, 7919])
    by_class: dict[str, list] = {}
    for s in pool:
        by_class.setdefault(s.label, []).append(s)
    return {c: [clips[i] for i in rng.permutation(len(clips))] for c, clips in sorted(by_class.items())}


def write_manifest(path: Path, samples) -> Path:
    """A CSV manifest path,label,group of `samples` with absolute paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "group"])
        for s in samples:
            writer.writerow([str(Path(s.path).resolve()), s.label, s.group])
    return path


def learning_curve(cfg: CurveConfig) -> CurveResult:
    """Train and score every (size, seed) point, write curve.csv/.json/.png under `cfg.out`, and summarise."""
    from ..data.dataset import labelled_clips
    from ..data.splits import split
    from ..evaluate import evaluate
    from ..files import atomic_json
    from ..predict import Predictor
    from .config import TrainConfig
    from .loop import train

    out = Path(cfg.out)
    _, good, _ = labelled_clips(cfg.data, "a learning curve")
    if cfg.test_data:
        _, test, _ = labelled_clips(cfg.test_data, "a learning curve's held-out set")
        pool = good
    else:
        pool, test = split(good, cfg.test_fraction, seed=0)
    unknown = sorted({s.label for s in test} - {s.label for s in pool})
    if unknown:
        raise DataError(f"held-out clips have classes with no training clips: {unknown}")
    counts = {c: sum(s.label == c for s in pool) for c in sorted({s.label for s in pool})}
    if len(counts) < 2:
        raise DataError(f"{cfg.data} has clips of {len(counts)} class(es); a curve needs at least two")
    available = min(counts.values())
    sizes = sorted(set(cfg.sizes)) if cfg.sizes else default_sizes(available)
    too_big = [n for n in sizes if n > available]
    if too_big:
        smallest = min(counts, key=counts.get)
        raise DataError(f"sizes {too_big} ask for more clips per class than there are: class {smallest!r} has {available} outside the held-out clips")
    if len(test) < 20:
        log.warning("only %d held-out clips: each accuracy is uncertain by about ±%.2f", len(test), 1 / math.sqrt(max(len(test), 1)))
    write_manifest(out / "held_out.csv", test)  # which clips every point is scored on, for the record
    log.info("curve: %d classes, sizes %s x %d seeds, %d held-out clips, %s (%s)", len(counts), sizes, cfg.seeds, len(test), cfg.backbone, cfg.mode)

    points = _load_points(out)
    done = {(p["size"], p["seed"]) for p in points}
    for seed in range(cfg.seeds):
        order = nested_draws(pool, seed)
        for n in sizes:
            if (n, seed) in done:
                continue
            name = f"n{n:03d}-seed{seed}"
            run_dir = out / "points" / name
            if run_dir.exists():  # an interrupted point: start it again
                shutil.rmtree(run_dir)
            drawn = [s for c in order for s in order[c][:n]]
            manifest = write_manifest(out / "manifests" / f"{name}.csv", drawn)
            epochs = cfg.model_epochs(len(drawn))
            print(f"curve: {n} clips per class, seed {seed}: training {epochs} epochs ...", flush=True)
            result = train(TrainConfig(
                data=str(manifest), val_data=str(manifest), out=str(run_dir), backbone=cfg.backbone,
                finetune=cfg.mode, epochs=epochs, patience=0, max_minutes=cfg.model_minutes,
                batch_size=min(cfg.batch_size, len(drawn)), seed=seed, cache_dir=cfg.cache_dir,
            ))
            scored = evaluate(Predictor.load(run_dir), test, batch_clips=8).metrics()
            point = {"size": n, "seed": seed, "accuracy": scored["accuracy"], "macro_f1": round(scored["macro_f1"], 5),
                     "train_accuracy": round(float(result.val_accuracy), 5), "epochs": result.epochs_run,
                     "planned_epochs": epochs, "seconds": round(result.seconds, 1)}
            print(f"curve: {n} clips per class, seed {seed}: held-out accuracy {point['accuracy']:.3f} "
                  f"(training clips {point['train_accuracy']:.3f}, {point['epochs']} epochs, {point['seconds']:.0f} s)", flush=True)
            atomic_json(out / "points" / f"{name}.json", point)
            if not cfg.keep_runs:
                shutil.rmtree(run_dir, ignore_errors=True)
            points.append(point)
    points = [p for p in points if p["size"] in sizes and p["seed"] < cfg.seeds]
    result = CurveResult(list(counts), len(test), sorted(points, key=lambda p: (p["size"], p["seed"])), "", out)
    result.summary = summarise(result.by_size(), len(counts), len(test), result.points)
    write_curve(result, cfg)
    return result


def _load_points(out: Path) -> list[dict]:
    folder = out / "points"
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("n*-seed*.json"))]


def summarise(rows: list[dict], num_classes: int, held_out: int, points: list[dict] | None = None) -> str:
    """Whether more clips are still paying off, read from the last step of the curve.

    The gain of the last step is put per doubling of the clip count and
    compared with the seed-to-seed noise (standard error of the difference of
    the two means): a gain of 2 points or more per doubling that stands out
    of the noise is "still paying off". With the `points`, it also warns when
    models stopped at their time budget or do not fit their own training
    clips, since then the curve measures the budget rather than the data.
    """
    lines = [f"{'clips/class':>11}  {'accuracy':>8}  {'spread (sd)':>11}  seeds"]
    lines += [f"{r['size']:>11}  {r['mean']:8.3f}  {r['std']:11.3f}  {r['seeds']}" for r in rows]
    chance = 1 / num_classes
    last = rows[-1]
    if len(rows) < 2:
        lines.append(f"only one size ({last['size']} clips per class): add clips or sizes to see a trend.")
        return "\n".join(lines)
    prev = rows[-2]
    doublings = math.log2(last["size"] / prev["size"])
    gain = (last["mean"] - prev["mean"]) / doublings
    noise = math.sqrt(last["std"] ** 2 / last["seeds"] + prev["std"] ** 2 / prev["seeds"]) / doublings
    step = f"{prev['size']} -> {last['size']} clips per class"
    if last["mean"] >= 0.98:
        verdict = (f"accuracy is already {last['mean']:.2f} at {last['size']} clips per class: these held-out clips cannot show "
                   "more gains; test on harder or more varied clips to learn more.")
    elif gain >= max(0.02, 2 * noise):
        verdict = (f"still paying off: {gain:+.3f} accuracy per doubling ({step}); doubling to about {2 * last['size']} clips "
                   f"per class would likely add several points more.")
    elif gain >= 0.02:
        verdict = (f"probably still improving ({gain:+.3f} per doubling, {step}), but within the seed-to-seed spread "
                   f"(±{noise:.3f}); run more --seeds to be sure.")
    else:
        verdict = (f"flattening: {gain:+.3f} accuracy per doubling ({step}); more clips like these are unlikely to help much. "
                   "More varied clips, a stronger backbone or another fine-tuning mode may.")
    if last["mean"] < chance + 0.1:
        verdict += f" (Chance is {chance:.2f}: the models barely learn; check the data and training settings first.)"
    lines.append(verdict)
    lines += _cautions(points or [], last["size"])
    lines.append(f"scored on {held_out} held-out clips (one clip = {1 / max(held_out, 1):.3f} accuracy).")
    return "\n".join(lines)


def _cautions(points: list[dict], largest: int) -> list[str]:
    """Warnings that the models, not the data, limit the curve."""
    out = []
    cut = [p for p in points if p.get("planned_epochs") and p["epochs"] < p["planned_epochs"]]
    if cut:
        sizes = sorted({p["size"] for p in cut})
        out.append(f"caution: {len(cut)} of {len(points)} models stopped at the --max-minutes budget before their planned epochs "
                   f"(sizes {sizes}); those points are undertrained: raise --max-minutes for a fair curve.")
    fit = [p["train_accuracy"] for p in points if p["size"] == largest and "train_accuracy" in p]
    if fit and float(np.mean(fit)) < 0.9:
        out.append(f"caution: at {largest} clips per class the models fit only {np.mean(fit):.2f} of their own training clips: "
                   "they are undertrained, so more epochs or time may help before more clips do.")
    return out


def write_curve(result: CurveResult, cfg: CurveConfig) -> None:
    """curve.csv (one row per model), curve.json (points, per-size statistics, summary) and curve.png."""
    from ..files import atomic_json, atomic_write

    out = result.out
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["size", "seed", "accuracy", "macro_f1", "train_accuracy", "epochs", "planned_epochs", "seconds"],
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(result.points)
    atomic_write(out / "curve.csv", buf.getvalue())
    atomic_json(out / "curve.json", {
        "data": cfg.data, "test_data": cfg.test_data, "backbone": cfg.backbone, "finetune": cfg.mode,
        "epochs": cfg.epochs, "max_minutes": cfg.model_minutes, "classes": result.classes,
        "held_out_clips": result.held_out, "points": result.points, "by_size": result.by_size(), "summary": result.summary,
    })
    plot_curve(result.by_size(), len(result.classes), out / "curve.png",
               title=f"{cfg.backbone} ({cfg.mode}), {result.held_out} held-out clips")


def plot_curve(rows: list[dict], num_classes: int, path: Path, title: str = "") -> None:
    """Held-out accuracy against clips per class (log scale): mean line, ±1 sd band, every seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import atomic_write

    sizes = [r["size"] for r in rows]
    mean = np.array([r["mean"] for r in rows])
    std = np.array([r["std"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.fill_between(sizes, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), alpha=0.2, color="tab:blue", label="±1 sd over seeds")
    ax.plot(sizes, mean, "o-", color="tab:blue", label="mean")
    for r in rows:
        ax.scatter([r["size"]] * len(r["values"]), r["values"], s=12, color="black", alpha=0.6, zorder=3)
    ax.axhline(1 / num_classes, ls="--", color="grey", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("training clips per class")
    ax.set_ylabel("held-out accuracy")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
