"""The run folder: everything `predict`, `eval` and `serve` need; written and read here only.

``runs/<name>/`` holds ``snapaction.json`` (classes, backbone, sampling,
preprocessing, the resolved config, package versions, skipped clips), the
trained weights in one of four forms (a PEFT adapter for LoRA, a full
``model/`` folder for full fine-tuning and the scratch preset, ``head.safetensors``
for probe mode, ``pose/`` for the pose preset), ``metrics.csv``, ``report.json``,
``curves.png`` (per epoch; for a pose run, its classifiers compared), and while training a resumable ``checkpoint/``. Every file is
replaced atomically, so a reader never sees half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RunError
from .files import atomic_json, atomic_write, move_files_into, replace_dir, temp_dir

RUN_FILE = "snapaction.json"
REPORT_FILE = "report.json"
CHECKPOINT_DIR = "checkpoint"
FORMAT_VERSION = 1
WEIGHTS = ("adapter", "model", "head", "pose", "onnx")
"""The forms trained weights take (`RunInfo.weights`); "onnx" is an export folder (`snapaction.engines.export`)."""


def versions() -> dict[str, str]:
    """Versions of the packages a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("snapaction", "torch", "transformers", "peft", "accelerate", "av", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class RunInfo:
    """The contents of ``snapaction.json``."""

    classes: list[str]
    backbone: str
    finetune: str
    weights: str
    """One of `WEIGHTS`: which form the trained weights take."""
    sampling: dict
    preprocessing: dict
    config: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    clips: dict = field(default_factory=dict)
    """{"train": [...], "val": [...]}: `clip_key` of every clip the run trained and validated on, so that
    judging it on one of them is noticed (empty for runs written before it was kept)."""
    masking: dict = field(default_factory=dict)
    """`snapaction.mask.Masking` fields of a run trained on masked clips (empty: no masking); prediction applies the same."""
    versions: dict = field(default_factory=versions)
    format_version: int = FORMAT_VERSION

    def save(self, run_dir: Path) -> None:
        atomic_json(Path(run_dir) / RUN_FILE, self.__dict__)

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunInfo":
        """Read a run folder's ``snapaction.json``; `RunError` in one sentence when it is not a run."""
        run_dir = Path(run_dir)
        path = run_dir / RUN_FILE
        if run_dir.is_file():
            raise RunError(f"{run_dir} is {kind_of_file(run_dir)}, not a run folder; pass the --out folder of `snapaction train`")
        if not run_dir.is_dir():
            raise RunError(f"run folder {run_dir} does not exist; train one with `snapaction train DATA --out {run_dir}`")
        if not path.is_file():
            raise RunError(f"{run_dir} is not a SnapAction run folder (it has no {RUN_FILE}); pass the --out folder of `snapaction train`")
        try:
            data = json.loads(path.read_text())
            info = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (json.JSONDecodeError, TypeError) as err:
            raise RunError(f"{path} is damaged ({err}); train the run again") from None
        if info.format_version > FORMAT_VERSION:
            raise RunError(f"{run_dir} was written by a newer SnapAction (format {info.format_version}); upgrade snapaction")
        return info


def kind_of_file(path: str | Path) -> str:
    """'a video file', 'a CSV manifest' or 'a file', by the name: what was given where a run folder goes."""
    from .video.info import VIDEO_EXTENSIONS

    suffix = Path(path).suffix.lower()
    return "a video file" if suffix in VIDEO_EXTENSIONS else "a CSV manifest" if suffix == ".csv" else "a file"


def clip_key(path: str | Path) -> str:
    """A short key of a clip's content (the first 16 hex digits of its SHA-256): the same clip under any name."""
    from .data.cache import content_hash

    return content_hash(path)[:16]


def clip_keys(samples) -> dict:
    """`RunInfo.clips` for a `Data`-like object with ``train`` and ``val`` samples."""
    return {"train": [clip_key(s.path) for s in samples.train], "val": [clip_key(s.path) for s in samples.val]}


def is_run(folder: str | Path) -> bool:
    """True when `folder` holds a run's ``snapaction.json``."""
    return (Path(folder) / RUN_FILE).is_file()


# --- weights ------------------------------------------------------------------

ADAPTER_DIR = "adapter"
"""Where a finished LoRA run keeps its PEFT adapter; its root holds the merged weights transformers loads (`snapaction.hf`)."""
INDEX_FILE = "model.safetensors.index.json"
MERGED_FILES = ("config.json", "model.safetensors", INDEX_FILE)


def adapter_dir(run_dir: str | Path) -> Path:
    """Where a LoRA run's adapter is: the root while it trains (and in older runs), ``adapter/`` once finished."""
    run_dir = Path(run_dir)
    return run_dir if (run_dir / "adapter_model.safetensors").is_file() else run_dir / ADAPTER_DIR


def clear_merged(run_dir: str | Path) -> None:
    """Remove a LoRA run's merged weights: a newer adapter is being written, and the two must never disagree."""
    for name in MERGED_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)



def save_weights(unwrapped, run_dir: Path, mode: str) -> None:
    """Write a trained model: a PEFT adapter for LoRA (base weights never copied), else the full model."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(run_dir, ".weights-")
    unwrapped.save_pretrained(tmp)
    if mode == "lora":
        clear_merged(run_dir)  # a resumed run's merged weights are older than this adapter: rewritten when it finishes
        move_files_into(tmp, run_dir)
    else:
        replace_dir(tmp, run_dir / "model")


def save_head(run_dir: Path, head_name: str, head) -> None:
    """``head.safetensors``: a probe's linear head under the backbone's own parameter names."""
    from safetensors.torch import save

    state = {f"{head_name}.weight": head.weight.detach().contiguous(), f"{head_name}.bias": head.bias.detach().contiguous()}
    atomic_write(Path(run_dir) / "head.safetensors", save(state))


def load_model(run_dir: str | Path, info: RunInfo | None = None):
    """The trained model of a run, in whichever form the run stored it; `RunError` when it is missing."""
    run_dir = Path(run_dir)
    info = info or RunInfo.load(run_dir)
    if info.weights == "model":
        from transformers import AutoModelForVideoClassification

        from .models import scratch  # noqa: F401  registers the scratch architecture

        folder = run_dir / "model"
        if not folder.is_dir() and (run_dir / "config.json").is_file():  # an `export --hf` folder: the model is the root
            folder = run_dir
        if not (folder / "config.json").is_file():
            raise RunError(f"{run_dir} has no trained weights (model/ is missing); the run may not have finished an epoch")
        return AutoModelForVideoClassification.from_pretrained(folder)
    if info.weights not in WEIGHTS:
        raise RunError(f"{run_dir}/{RUN_FILE} names unknown weights {info.weights!r}; expected one of {list(WEIGHTS)}")
    if info.weights == "pose":
        raise RunError(f"{run_dir} holds a pose model, which is not a video network; load it with Predictor.load")
    if info.weights == "onnx":
        raise RunError(f"{run_dir} is an ONNX export, not PyTorch weights; run it with --engine onnx or pass the run folder it came from")
    from .models.backbone import load_backbone

    base, _ = load_backbone(info.backbone, info.classes)
    if info.weights == "adapter":
        from peft import PeftModel

        folder = adapter_dir(run_dir)
        if not (folder / "adapter_model.safetensors").is_file():
            raise RunError(f"{run_dir} has no adapter_model.safetensors; the run may not have finished an epoch")
        return PeftModel.from_pretrained(base, folder).merge_and_unload()
    from safetensors.torch import load_file

    path = run_dir / "head.safetensors"
    if not path.is_file():
        raise RunError(f"{run_dir} has no head.safetensors; the run may not have finished")
    _, unexpected = base.load_state_dict(load_file(path), strict=False)
    if unexpected:
        raise RunError(f"{path} does not fit backbone {info.backbone}: unexpected weights {unexpected[:3]}")
    return base


def save_pose_model(run_dir: Path, pipeline) -> None:
    """``pose/``: a pose run's classifier and settings (a `snapaction.pose.PosePipeline`), replaced as a whole."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(run_dir, ".pose-")
    pipeline.save(tmp)
    replace_dir(tmp, run_dir / "pose")


def load_pose_model(run_dir: str | Path, cache_dir: str | Path | None = None):
    """The `snapaction.pose.PosePipeline` of a pose run; `RunError` when it is missing."""
    from .pose.pipeline import PosePipeline

    folder = Path(run_dir) / "pose"
    if not folder.is_dir():
        raise RunError(f"{run_dir} has no pose/ folder; the pose run may not have finished")
    return PosePipeline.load(folder, cache_dir)


# --- reports ------------------------------------------------------------------


def write_train_report(run_dir: Path, result, rows: list[dict], trainable: int, total: int, extra: dict | None = None) -> None:
    """``report.json``: the best epoch's validation metrics and how the run went (`result`: a `TrainResult`)."""
    import math

    atomic_json(
        Path(run_dir) / REPORT_FILE,
        {
            "best_epoch": result.best_epoch,
            "val_accuracy": result.val_accuracy,
            "val_loss": None if math.isnan(result.val_loss) else result.val_loss,
            "epochs_run": result.epochs_run,
            "seconds": round(result.seconds, 1),
            "trainable_parameters": trainable,
            "total_parameters": total,
            "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
            **(extra or {}),
        },
    )


def update_report(run_dir: str | Path, **fields) -> None:
    """Set `fields` in the run's ``report.json`` (the rest kept), e.g. clip counts or held-out figures for the model card."""
    atomic_json(Path(run_dir) / REPORT_FILE, {**read_report(run_dir), **fields})


def read_report(run_dir: str | Path) -> dict:
    """The run's ``report.json`` ({} before training has finished)."""
    path = Path(run_dir) / REPORT_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    """``metrics.csv``: one row per epoch."""
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(run_dir) / "metrics.csv", buf.getvalue())


def plot_curves(run_dir: Path, rows: list[dict]) -> None:
    """``curves.png``: training and validation loss, and validation accuracy, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train (smoothed targets)")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="validation")
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("loss"), ax_loss.legend()
    ax_acc.plot(epochs, [r["val_accuracy"] for r in rows], color="tab:green")
    ax_acc.set_xlabel("epoch"), ax_acc.set_ylabel("validation accuracy"), ax_acc.set_ylim(0, 1.02)
    for ax in (ax_loss, ax_acc):  # epochs are whole numbers: no tick at 1.5
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epochs) == 1:  # one point: a visible dot on a range around it, not a blank plot
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
            for line in ax.get_lines():
                line.set_marker("o")
    fig.subplots_adjust(left=0.08, right=0.985, bottom=0.14, top=0.96, wspace=0.25)  # fixed: tight_layout cost 0.25 s a run
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(Path(run_dir) / "curves.png", buf.getvalue())


def plot_pose_classifiers(run_dir: Path, rows: list[dict], title: str = "", note: str = "") -> None:
    """``curves.png`` of a pose run: the validation accuracy of each classifier it compared, the kept one marked.

    `rows` are its metrics.csv rows (classifier, val_accuracy or None, seconds, chosen); a pose run has no
    epochs, so this is its picture of how training went."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    names = [f"{r['classifier']}\n{r['seconds']:.1f} s to train" for r in rows]
    values = [r["val_accuracy"] if r["val_accuracy"] is not None else 0.0 for r in rows]
    colours = ["tab:green" if r["chosen"] else "tab:gray" for r in rows]
    ax.bar(range(len(rows)), values, color=colours, width=0.6)
    for i, r in enumerate(rows):
        said = "–" if r["val_accuracy"] is None else f"{r['val_accuracy']:.3f}"
        ax.text(i, values[i] + 0.02, said + ("  (kept)" if r["chosen"] else ""), ha="center", va="bottom", fontsize=9,
                fontweight="bold" if r["chosen"] else "normal")
    ax.set_xticks(range(len(rows)), names)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("validation accuracy")
    ax.set_title(title or "pose classifiers, judged on the validation clips", fontsize=10)
    if note:
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#b00020", wrap=True)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.17, top=0.86)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(Path(run_dir) / "curves.png", buf.getvalue())


# --- resumable checkpoints ----------------------------------------------------


def recover_partial_writes(run_dir: str | Path) -> list[str]:
    """Finish or undo what a kill left half-done in `run_dir`; returns one line per thing done.

    A folder is replaced in two renames (the old one aside, the new one in), and
    its new version is written in a ``.checkpoint-*`` / ``.weights-*`` / ``.pose-*``
    folder first. A kill between the renames leaves ``NAME.old`` and no ``NAME``:
    the complete new checkpoint (it has its state.json, written last) is put in
    place, else the old one back. Half-written temporary folders are removed.
    """
    run_dir = Path(run_dir)
    done: list[str] = []
    if not run_dir.is_dir():
        return done
    for name, prefix, complete in ((CHECKPOINT_DIR, ".checkpoint-", "state.json"), ("model", ".weights-", None), ("pose", ".pose-", None)):
        target, old = run_dir / name, run_dir / f"{name}.old"
        fresh = sorted((p for p in run_dir.glob(prefix + "*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
        if not target.exists():
            finished = [p for p in fresh if complete and (p / complete).is_file()]
            if finished:
                os.replace(finished[-1], target)
                done.append(f"put the checkpoint finished just before the stop in place ({finished[-1].name} -> {name})")
            elif old.is_dir():
                os.replace(old, target)
                done.append(f"put {name} back from {old.name}, left by a stop during its replacement")
        for leftover in [p for p in fresh if p.exists()] + ([old] if old.exists() else []):
            shutil.rmtree(leftover, ignore_errors=True)
            done.append(f"removed {leftover.name}, left half-written by a stop")
    return done


def has_checkpoint(run_dir: str | Path) -> bool:
    """True when `run_dir` holds a checkpoint `--resume` can continue from."""
    return (Path(run_dir) / CHECKPOINT_DIR / "state.json").is_file()


def save_checkpoint(accelerator, run_dir: Path, state: dict) -> None:
    """Model, optimizer, scheduler, random states and loop state, replaced as a whole (every process calls it)."""
    checkpoint_dir = Path(run_dir) / CHECKPOINT_DIR
    tmp = temp_dir(checkpoint_dir.parent, ".checkpoint-") if accelerator.is_main_process else None
    tmp_list = [str(tmp) if tmp else None]
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(tmp_list)
    tmp = Path(tmp_list[0])
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_json(tmp / "state.json", state)
        replace_dir(tmp, checkpoint_dir)
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator, run_dir: Path) -> dict:
    """Restore what `save_checkpoint` saved into the prepared objects; returns the loop state."""
    accelerator.load_state(str(Path(run_dir) / CHECKPOINT_DIR))
    return checkpoint_state(run_dir)


def checkpoint_state(run_dir: str | Path) -> dict | None:
    """The loop state the run's checkpoint holds (epoch, metrics rows, ...), or None when it has none."""
    path = Path(run_dir) / CHECKPOINT_DIR / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None
