"""Evaluation: how well a model classifies labelled clips, written as a report folder.

`evaluate(predictor, samples, views, crops)` runs the model over labelled
clips (a bad clip is reported and skipped, never fatal) and returns an
`Evaluation`: the probabilities of every class for every clip. From it,
`metrics()` computes accuracy, macro-F1, per-class precision/recall/F1,
top-k accuracy, the confusion matrix and the expected calibration error, and
`write_eval_report(folder, ...)` writes them as JSON/CSV files and two figures.

The official UCF101 and HMDB51 split files are read by `snapaction.data.splits`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError, did_you_mean

log = logging.getLogger(__name__)

ECE_BINS = 10
TOP_K = (1, 3, 5)


# --- metrics -------------------------------------------------------------------


def calibration_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Clips grouped by confidence (top probability) into `bins` equal-width bins of (0, 1].

    Per bin: its range, the number of clips, their mean confidence and their
    accuracy. `probs` float (N, K), `labels` int (N,).
    """
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    # bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 joins bin 0
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        out.append({
            "low": b / bins,
            "high": (b + 1) / bins,
            "clips": n,
            "confidence": float(confidence[inside].mean()) if n else None,
            "accuracy": float(correct[inside].mean()) if n else None,
        })
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error (ECE): how far the model's confidence is from its accuracy.

    A clip's confidence is its top probability. Clips are put into `bins`
    (10) equal-width confidence bins, (0, 0.1], (0.1, 0.2], ..., (0.9, 1];
    in each bin the gap |accuracy - mean confidence| is weighted by the share
    of clips that fall in it, and the weighted gaps are summed:

        ECE = sum_b (n_b / N) * |acc_b - conf_b|

    0 means the confidences can be taken at face value (of the clips
    predicted with confidence 0.8, 80% are right); 0.1 means they are off by
    10 percentage points on average. Over few clips it is noisy and biased
    upwards: read it next to the clip counts in ``reliability.png``.
    """
    if len(labels) == 0:
        return float("nan")
    total = len(labels)
    return float(sum(b["clips"] / total * abs(b["accuracy"] - b["confidence"]) for b in calibration_bins(probs, labels, bins) if b["clips"]))


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of clips whose true class is among the `k` most probable (ties broken by class order).

    Written out rather than sklearn's ``top_k_accuracy_score``, which reads a
    two-class score matrix differently from a many-class one.
    """
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(1).mean())


def compute_metrics(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Every number of a report for probabilities float (N, K) and true class ids int (N,).

    Macro-F1 averages over the classes that occur in the labels or the
    predictions (a class with no test clip that is never predicted does not
    count as an F1 of 0); the per-class table lists every class, with its
    support (number of test clips).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise DataError("no clip could be evaluated, so there is nothing to report")
    ids = list(range(len(classes)))
    preds = probs.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    return {
        "clips": int(len(labels)),
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "top_k": {f"top{k}": top_k_accuracy(probs, labels, k) for k in TOP_K if k < len(classes) or k == 1},
        "ece": expected_calibration_error(probs, labels),
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(labels, preds, labels=ids).tolist(),
        "calibration": calibration_bins(probs, labels),
    }


# --- running a model over labelled clips ------------------------------------------


@dataclass
class Evaluation:
    """A model's probabilities for labelled clips, and the clips it could not read."""

    classes: list[str]
    paths: list[str]
    labels: np.ndarray
    """int (N,): the true class id of every clip."""
    probs: np.ndarray
    """float (N, K): the model's probabilities."""
    views: int = 1
    crops: int = 1
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seen: list[dict | None] = field(default_factory=list)
    """Per clip, what the model could see (`Prediction.seen`: the pose model's frames with a body and hands), else None."""

    def people(self) -> dict | None:
        """How many clips had no body, no hands, nobody at all in view (None for models that do not look for people)."""
        seen = [s for s in self.seen if s is not None]
        if not seen:
            return None
        return {"clips": len(seen), "no_body": sum(s["body"] == 0 for s in seen),
                "no_hands": sum(s["hands"] == 0 for s in seen),
                "nobody": sum(s["body"] == 0 and s["hands"] == 0 for s in seen),
                "clips_no_body": [p for p, s in zip(self.paths, self.seen) if s is not None and s["body"] == 0]}

    def metrics(self) -> dict:
        return compute_metrics(self.probs, self.labels, self.classes)

    def misclassified(self, top: int = 3) -> list[dict]:
        """Every wrongly classified clip with its true class and its `top` most probable classes."""
        out = []
        for path, label, p in zip(self.paths, self.labels, self.probs):
            order = np.argsort(-p, kind="stable")
            if order[0] != label:
                out.append({
                    "path": path,
                    "true": self.classes[label],
                    "predicted": self.classes[order[0]],
                    "true_probability": float(p[label]),
                    "top": [(self.classes[i], float(p[i])) for i in order[:top]],
                })
        return sorted(out, key=lambda m: -m["top"][0][1])


def label_ids(samples, classes: list[str]) -> list[int]:
    """The class id of every sample; `DataError` naming the labels the model does not know."""
    index = {c: i for i, c in enumerate(classes)}
    folded = {c.lower(): i for i, c in enumerate(classes)}
    unknown = sorted({s.label for s in samples if s.label not in index and str(s.label).lower() not in folded})
    if unknown:
        hint = did_you_mean(unknown[0], classes)
        raise DataError(
            f"the test clips have classes the model does not know: {unknown[:10]}{' ...' if len(unknown) > 10 else ''};"
            f" the model's classes are {classes[:20]}{' ...' if len(classes) > 20 else ''}.{hint}"
        )
    return [index.get(s.label, folded.get(str(s.label).lower())) for s in samples]


def evaluate(predictor, samples, views: int = 1, crops: int = 1, batch_clips: int = 4) -> Evaluation:
    """Run `predictor` over labelled `samples` (each with ``path`` and ``label``) with `views` x `crops` TTA."""
    from tqdm.auto import tqdm

    samples = list(samples)
    if any(s.label is None for s in samples):
        raise DataError("the clips to evaluate have no labels; evaluation needs ROOT/<class>/ folders, a manifest with labels, or an official split")
    ids = dict(zip((s.path for s in samples), label_ids(samples, predictor.classes)))
    paths, labels, probs, skipped, seen = [], [], [], [], []
    results = predictor.predict_many([s.path for s in samples], views=views, crops=crops, batch_clips=batch_clips)
    for path, result in tqdm(results, total=len(samples), desc=f"evaluating ({views}x{crops} views)", leave=False):
        if isinstance(result, Exception):
            skipped.append((str(path), getattr(result, "reason", str(result))))
            continue
        paths.append(str(path))
        labels.append(ids[path])
        probs.append([result.probabilities[c] for c in predictor.classes])
        seen.append(getattr(result, "seen", None))
    return Evaluation(
        list(predictor.classes),
        paths,
        np.asarray(labels, dtype=np.int64),
        np.asarray(probs, dtype=np.float64).reshape(len(paths), len(predictor.classes)),
        views,
        crops,
        skipped,
        seen,
    )


# --- the report folder -----------------------------------------------------------


def summary(metrics: dict, title: str) -> str:
    """A few lines for the screen: headline numbers, then the weakest classes."""
    tops = "  ".join(f"{k} {v:.3f}" for k, v in metrics["top_k"].items() if k != "top1")
    lines = [
        f"{title}: {metrics['clips']} clips  accuracy {metrics['accuracy']:.3f}  macro-F1 {metrics['macro_f1']:.3f}"
        + (f"  {tops}" if tops else "")
        + f"  ECE {metrics['ece']:.3f}"
    ]
    classes = list(metrics["per_class"])
    if len(classes) <= 12:
        lines.append(confusion_text(np.asarray(metrics["confusion_matrix"]), classes))
    per_class = [(c, m) for c, m in metrics["per_class"].items() if m["support"]]
    worst = sorted(per_class, key=lambda cm: cm[1]["f1"])[:5]
    if worst and worst[0][1]["f1"] < 1:
        width = max(len(c) for c, _ in worst)
        lines.append("  weakest classes:" + "".join(
            f"\n    {c:<{width}}  F1 {m['f1']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  ({m['support']} clips)"
            for c, m in worst if m["f1"] < 1
        ))
    return "\n".join(lines)


def confusion_text(matrix: np.ndarray, classes: list[str]) -> str:
    """The confusion matrix as an indented text table: rows true class, columns predicted."""
    width = max(5, *(len(c) for c in classes))
    cells = max(4, *(len(c) for c in classes))
    head = " " * (width + 4) + " ".join(f"{c:>{cells}}" for c in classes) + "   <- predicted"
    rows = [f"    {c:<{width}}" + " ".join(f"{v:>{cells}}" for v in row) for c, row in zip(classes, matrix.tolist())]
    return "\n".join([head, *rows])


def check_report_folder(folder: str | Path) -> None:
    """A report folder may be new, empty, or an earlier report (replaced whole); anything else raises `DataError`
    before anything is written, since replacing it would delete the files there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} is a file; pass --out a folder for the report")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "report.json").is_file():
        raise DataError(f"{folder} holds files that are not an eval report; pass --out a new or empty folder "
                        "(an earlier report there is replaced), SnapAction will not delete them")


def write_eval_report(folder: str | Path, evaluation: Evaluation, baseline: Evaluation | None = None, about: dict | None = None) -> dict:
    """Write the report folder for `evaluation` and return what ``report.json`` holds.

    `baseline` is the same clips without test-time augmentation, reported beside
    it. Files: ``report.json`` (every number), ``per_class.csv``,
    ``confusion_matrix.json`` + ``.png`` (rows: true class, columns: predicted),
    ``reliability.png`` (calibration), ``predictions.csv`` (every clip's
    probabilities), ``misclassified.csv`` and ``summary.txt``. When
    ``about["overlap_with_training"]`` counts clips the run trained or validated on,
    the confusion matrix's picture says in red that it is not held out (the picture
    is what people share), and ``report.json`` holds that sentence as ``not_held_out``.
    The folder is replaced as a whole, never left half-written.
    """
    from .files import atomic_json, replace_dir, temp_dir

    folder = Path(folder)
    check_report_folder(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(folder.parent, f".{folder.name}-")
    try:
        metrics = evaluation.metrics()
        classes = evaluation.classes
        report = {**(about or {}), "views": evaluation.views, "crops": evaluation.crops, **metrics}
        report["skipped"] = [{"path": p, "reason": r} for p, r in evaluation.skipped]
        people = evaluation.people()
        if people is not None:
            report["people"] = people
        text = summary(metrics, f"{evaluation.views} view(s) x {evaluation.crops} crop(s)")
        if baseline is not None:
            base = baseline.metrics()
            report["without_tta"] = {k: base[k] for k in ("clips", "accuracy", "macro_f1", "top_k", "ece")}
            text = summary(base, "single view (no TTA)").splitlines()[0] + "\n" + text
        report["misclassified"] = evaluation.misclassified()
        note = not_held_out(report.get("overlap_with_training"))
        if note:
            report["not_held_out"] = note
        atomic_json(tmp / "report.json", report)
        atomic_json(tmp / "confusion_matrix.json", {
            "classes": classes,
            "rows": "true class",
            "columns": "predicted class",
            "matrix": metrics["confusion_matrix"],
        })
        _write_csv(tmp / "per_class.csv", ["class", "precision", "recall", "f1", "support"],
                   [[c, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", m["support"]] for c, m in metrics["per_class"].items()])
        _write_csv(tmp / "predictions.csv", ["path", "label", "predicted", *classes],
                   [[p, classes[y], classes[int(np.argmax(q))], *(f"{v:.5f}" for v in q)]
                    for p, y, q in zip(evaluation.paths, evaluation.labels, evaluation.probs)])
        _write_csv(tmp / "misclassified.csv", ["path", "true", "predicted", "true_probability", "top_predictions"],
                   [[m["path"], m["true"], m["predicted"], f"{m['true_probability']:.4f}", "; ".join(f"{c} {p:.3f}" for c, p in m["top"])]
                    for m in report["misclassified"]])
        plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), classes, tmp / "confusion_matrix.png",
                              title=f"accuracy {metrics['accuracy']:.3f}, {metrics['clips']} clips", note=note)
        plot_reliability(metrics["calibration"], metrics["ece"], tmp / "reliability.png")
        if people is not None:
            text += (f"\n  {people['no_body']} of the {people['clips']} clips had no body in view"
                     f" ({people['nobody']} no body and no hands); they were classified and are counted above")
        if evaluation.skipped:
            text += f"\n  {len(evaluation.skipped)} clip(s) could not be read and were skipped:" + "".join(
                f"\n    {p}: {r}" for p, r in evaluation.skipped)
        (tmp / "summary.txt").write_text(text + "\n")
        report["summary"] = text
        replace_dir(tmp, folder)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def not_held_out(overlap: dict | None) -> str:
    """What the report's picture says when some of its clips trained or validated the run ('' when none did);
    `overlap` is `training_overlap`'s answer."""
    train, val, clips = (overlap or {}).get("train", 0), (overlap or {}).get("val", 0), (overlap or {}).get("clips", 0)
    if not train and not val:
        return ""
    parts = ([f"{train} trained the run"] if train else []) + ([f"{val} are its validation clips, which chose its kept epoch"] if val else [])
    return f"Not held out: of these {clips} clips, " + " and ".join(parts)


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def plot_confusion_matrix(matrix: np.ndarray, classes: list[str], path: str | Path, title: str = "", note: str = "") -> None:
    """Confusion matrix as a PNG (`confusion_figure`), cropped to what is drawn: the studio shows it at this size."""
    _save(confusion_figure(matrix, classes, title, note), path, tight=True)


def confusion_figure(matrix: np.ndarray, classes: list[str], title: str = "", note: str = ""):
    """The matplotlib figure of a confusion matrix: rows true class, columns predicted, colour = share of the row,
    text = clip count; `note` is a second title line in red (e.g. that the clips are not held out).

    Cells and fonts are sized to the number of classes (a few classes get large cells, a hundred small
    ones), and long class names are wrapped at '_', '-' and spaces to the lines a cell has room for, so
    neighbouring names never overlap; column names are turned 45 degrees.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    cell = min(0.75, max(0.2, 9.0 / max(k, 1)))  # inches
    font = min(10.0, max(4.0, cell * 72 * 0.25))  # points
    lines = max(1, int(cell * 72 * 0.75 // (font * 1.25)))  # wrapped lines a cell's height (or diagonal) has room for
    fig = plt.figure(figsize=(cell * k + 1.0, cell * k + 0.6))
    ax = fig.add_axes((0.5 / (cell * k + 1.0), 0.3 / (cell * k + 0.6), cell * k / (cell * k + 1.0), cell * k / (cell * k + 0.6)))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="equal")
    ax.set_xticks(range(k), [wrap_label(c, lines) for c in classes], rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=font)
    ax.set_yticks(range(k), [wrap_label(c, lines) for c in classes], fontsize=font)
    ax.set_xlabel("predicted class", fontsize=max(font, 8))
    ax.set_ylabel("true class", fontsize=max(font, 8))
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=font,
                            color="white" if share[i, j] > 0.5 else "black")
    bar = fig.colorbar(image, ax=ax, fraction=min(0.046, 0.25 / (cell * k)), pad=min(0.04, 0.2 / (cell * k)))
    bar.set_label("share of the true class", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    width = max(28, int((cell * k + 1.0) * 72 / 5.5))  # characters of 9-point text across the figure
    above = 5.0  # points above the matrix: the note's lines, then the title's
    for text, size, style in ((note, 8.5, {"color": "#b00020", "fontweight": "bold"}), (title, 9.0, {})):
        if text:
            wrapped = textwrap.wrap(text, width)
            ax.annotate("\n".join(wrapped), (0.5, 1.0), xycoords="axes fraction", xytext=(0, above), textcoords="offset points",
                        ha="center", va="bottom", fontsize=size, linespacing=1.2, **style)
            above += len(wrapped) * size * 1.2 + 3
    return fig


def wrap_label(name: str, lines: int, width: int = 16) -> str:
    """`name` broken into at most `lines` lines at '_', '-' or spaces (kept at the line's end), each about `width`
    characters; a name that cannot be broken stays whole."""
    parts = re.findall(r"[^_\- ]+[_\- ]*|[_\- ]+", name)
    width = max(width, math.ceil(len(name) / lines))
    out = [""]
    for part in parts:
        if out[-1] and len(out[-1]) + len(part.rstrip()) > width and len(out) < lines:
            out.append("")
        out[-1] += part
    return "\n".join(line.rstrip(" ") for line in out)


def plot_reliability(bins: list[dict], ece: float, path: str | Path) -> None:
    """Reliability diagram: accuracy against confidence per bin, with the clip count of each bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4))
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    accuracy = [b["accuracy"] or 0.0 for b in bins]
    ax.bar(centres, accuracy, width=1 / len(bins), edgecolor="black", color="tab:blue", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for c, b in zip(centres, bins):
        if b["clips"]:
            ax.text(c, min(0.97, (b["accuracy"] or 0) + 0.02), str(b["clips"]), ha="center", fontsize=7)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (top probability)"), ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {ece:.3f} (numbers: clips per bin)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: str | Path, tight: bool = False) -> None:
    import matplotlib.pyplot as plt

    from .files import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, **({"bbox_inches": "tight", "pad_inches": 0.12} if tight else {}))
    plt.close(fig)
    atomic_write(Path(path), buf.getvalue())


def training_overlap(run_dir: str | Path, samples) -> dict[str, int]:
    """How many of `samples` (by content, whatever their names) the run trained on and validated on.

    Judging a run on its own training clips measures memory, not recognition;
    on its validation clips, a figure that already chose the run's best epoch.
    Empty for a run that did not record its clips. Clips that cannot be read count as neither.
    """
    from .run import RunInfo, clip_key

    recorded = RunInfo.load(run_dir).clips
    if not recorded:
        return {}
    train, val = set(recorded.get("train", [])), set(recorded.get("val", []))
    keys = []
    for s in samples:
        try:
            keys.append(clip_key(s.path))
        except OSError:
            continue
    return {"train": sum(k in train for k in keys), "val": sum(k in val for k in keys), "clips": len(keys)}
