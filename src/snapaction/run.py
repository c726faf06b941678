"""The run folder: everything `predict`, `eval` and `serve` need, written atomically.

``runs/<name>/`` holds ``snapaction.json`` (classes, backbone, sampling,
preprocessing, the resolved config, package versions, skipped clips), the
trained weights in one of three forms (a PEFT adapter for LoRA, a full
``model/`` folder for full fine-tuning and the scratch preset, ``head.safetensors``
for probe mode), ``metrics.csv``, ``report.json`` and ``curves.png``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunError

RUN_FILE = "snapaction.json"
FORMAT_VERSION = 1


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask (os.umask can only be read by setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_json(path: Path, obj: Any) -> None:
    """`atomic_write` of `obj` as indented JSON."""
    atomic_write(path, json.dumps(obj, indent=2, default=str) + "\n")


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished folder `src` to `dst`, replacing what was there, never leaving `dst` half-written."""
    old = dst.with_name(dst.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    if old.exists():
        shutil.rmtree(old)


def move_files_into(src: Path, dst: Path) -> None:
    """Move every file of folder `src` into `dst` one atomic rename at a time, then remove `src`."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir():
            replace_dir(item, target)
        else:
            os.replace(item, target)
    shutil.rmtree(src, ignore_errors=True)


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
    """'adapter', 'model' or 'head': which form the trained weights take."""
    sampling: dict
    preprocessing: dict
    config: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    versions: dict = field(default_factory=versions)
    format_version: int = FORMAT_VERSION

    def save(self, run_dir: Path) -> None:
        atomic_json(Path(run_dir) / RUN_FILE, self.__dict__)

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunInfo":
        """Read a run folder's ``snapaction.json``; `RunError` in one sentence when it is not a run."""
        run_dir = Path(run_dir)
        path = run_dir / RUN_FILE
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

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train (smoothed targets)")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="validation")
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("loss"), ax_loss.legend()
    ax_acc.plot(epochs, [r["val_accuracy"] for r in rows], color="tab:green")
    ax_acc.set_xlabel("epoch"), ax_acc.set_ylabel("validation accuracy"), ax_acc.set_ylim(0, 1.02)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(Path(run_dir) / "curves.png", buf.getvalue())
