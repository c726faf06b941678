"""A run as a Hugging Face model folder: transformers' own `from_pretrained` and `pipeline` load it as it is.

Every video-network run folder also holds the files transformers looks for:
``config.json`` (the run's labels), the weights, and ``preprocessor_config.json``
(an image-processor config made from the run's preprocessing), beside the
model card ``README.md`` (`snapaction.card`). How the weights get there
depends on their form:

- ``model/`` (full fine-tuning, the scratch preset): ``model.safetensors.index.json``
  maps every weight to ``model/model.safetensors``, so no byte is stored twice.
- a LoRA adapter: transformers cannot load an adapter whose head has other
  classes than its base's (it reads the base's config, so the base's labels and
  head size, and an adapter folder with its own ``config.json`` must hold full
  weights beside it), so the run keeps the merged weights (``model.safetensors``)
  and its PEFT adapter moves to ``adapter/`` (loadable with
  ``PeftModel.from_pretrained(base, RUN / "adapter")``): a ``adapter_config.json``
  beside merged weights would make transformers apply the adapter twice.
- a probe's ``head.safetensors``: the backbone with its head, merged the same way.

Only an image-processor config is written: with a ``video_preprocessor_config.json``
transformers' pipeline would take a video processor, which needs torchvision, and
decodes with torchcodec; with an image processor it decodes with PyAV (``av``,
which SnapAction installs) and reads the first ``num_frames`` frames of a clip.

`export_hf` writes the same as a clean, self-contained folder (merged weights,
config, processor config, card, the run's ``snapaction.json``) to upload or to
load where SnapAction is not installed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from .errors import ConfigError, RunError

log = logging.getLogger(__name__)

from .card import loads_in_transformers
from .run import ADAPTER_DIR, INDEX_FILE, adapter_dir, clear_merged  # noqa: F401  (their home: the run folder's owner)

PROCESSOR_FILE = "preprocessor_config.json"
UPLOAD_EXCLUDE = ("checkpoint/*", "adapter/*", "eval-*", "*.png")
"""What `hf upload USER/NAME RUN` leaves out of a run folder (README's command): the resumable checkpoint (optimizer
state), the adapter the merged weights already hold, eval reports and plots."""
EXPORT_FILE = "export.json"
"""Where an export says what it is and where it came from (the ONNX export keeps its own there too)."""
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def processor_config(preprocessing: dict) -> dict:
    """A ``VideoMAEImageProcessor`` config that does what the run's `snapaction.preprocess.Preprocessing` does."""
    from .preprocess import RESAMPLE, Preprocessing

    pre = Preprocessing.from_dict(preprocessing)
    size = {"height": pre.resize_to[0], "width": pre.resize_to[1]} if pre.resize_to else {"shortest_edge": pre.size}
    return {
        "image_processor_type": "VideoMAEImageProcessor",
        "do_resize": True, "size": size, "resample": RESAMPLE[pre.resample],
        "do_center_crop": True, "crop_size": {"height": pre.crop[0], "width": pre.crop[1]},
        "do_rescale": True, "rescale_factor": pre.rescale,
        "do_normalize": True, "image_mean": list(pre.mean), "image_std": list(pre.std),
    }


def write_run_files(run_dir: str | Path, info=None) -> list[str]:
    """Make a finished run folder loadable by transformers as it is (see the module doc); returns the files written.

    Safe to call again: each call rewrites the files from the run's current weights."""
    from .files import atomic_json, move_files_into, temp_dir
    from .run import RunInfo

    run_dir = Path(run_dir)
    info = info or RunInfo.load(run_dir)
    if not loads_in_transformers(info):
        return []
    if info.weights == "model":
        return _index_into_model_dir(run_dir, info)
    if info.weights == "adapter":
        _move_adapter_aside(run_dir)
    from .run import load_model

    model = load_model(run_dir, info).eval()
    tmp = temp_dir(run_dir, ".weights-")  # a stop before the move leaves a folder the next run removes
    model.save_pretrained(tmp)
    atomic_json(tmp / PROCESSOR_FILE, processor_config(info.preprocessing))
    names = sorted(p.name for p in tmp.iterdir())
    (run_dir / INDEX_FILE).unlink(missing_ok=True)
    move_files_into(tmp, run_dir)
    return names


def _index_into_model_dir(run_dir: Path, info) -> list[str]:
    """``config.json`` and an index of ``model/``'s weights in the root: the run loads as it is, nothing copied."""
    from safetensors import safe_open

    from .files import atomic_json, atomic_write

    folder = run_dir / "model"
    if not (folder / "config.json").is_file():
        raise RunError(f"{run_dir} has no trained weights (model/ is missing); the run may not have finished an epoch")
    if (folder / INDEX_FILE).is_file():  # sharded: the same index, its file names one folder down
        index = json.loads((folder / INDEX_FILE).read_text())
        index["weight_map"] = {k: f"model/{v}" for k, v in index["weight_map"].items()}
    else:
        with safe_open(str(folder / "model.safetensors"), "pt") as fh:
            index = {"metadata": {}, "weight_map": {k: "model/model.safetensors" for k in fh.keys()}}
    (run_dir / "model.safetensors").unlink(missing_ok=True)
    atomic_write(run_dir / "config.json", (folder / "config.json").read_bytes())
    atomic_json(run_dir / INDEX_FILE, index)
    atomic_json(run_dir / PROCESSOR_FILE, processor_config(info.preprocessing))
    return ["config.json", INDEX_FILE, PROCESSOR_FILE]


def _move_adapter_aside(run_dir: Path) -> None:
    """A LoRA run's PEFT files from the root into ``adapter/`` (replacing an older copy there)."""
    from .files import replace_dir, temp_dir

    if not (run_dir / "adapter_model.safetensors").is_file():
        return  # already moved by an earlier call
    tmp = temp_dir(run_dir, ".weights-")
    for name in ADAPTER_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, tmp / name)
    replace_dir(tmp, run_dir / ADAPTER_DIR)
    for name in ADAPTER_FILES:
        (run_dir / name).unlink(missing_ok=True)
    (run_dir / "README.md").unlink(missing_ok=True)  # PEFT's empty template; the run's own card replaces it


# --- export --hf --------------------------------------------------------------


def export_hf(run_dir: str | Path, out: str | Path) -> list[str]:
    """Write a clean transformers model folder for the run into `out`; returns its file names.

    Built in a temporary sibling folder and swapped in when complete, so `out`
    holds the earlier export or the new one, never half of one. `ConfigError`
    when the run is not a video network, or when `out` is the run itself or
    a folder that is not an earlier export (nothing the user keeps there is replaced)."""
    import dataclasses

    from .card import card_text
    from .files import atomic_json, atomic_write, replace_dir, temp_dir
    from .run import RunInfo, load_model, read_report, versions

    run_dir, out = Path(run_dir), Path(out)
    info = RunInfo.load(run_dir)
    if not loads_in_transformers(info):
        what = "pose model (landmarks and a small classifier, not a transformers network)" if info.weights == "pose" else "ONNX export"
        raise ConfigError(f"{run_dir} holds a {what}; export --hf takes a run folder of a video network (VideoMAE, scratch, ...)")
    if out.resolve() == run_dir.resolve() or run_dir.resolve() in out.resolve().parents:
        raise ConfigError(f"--hf {out} is inside the run folder {run_dir}; pass a folder beside it, e.g. {run_dir.parent / (run_dir.name + '-hf')}")
    if out.exists() and not _is_earlier_export(out):
        raise ConfigError(f"--hf {out} already exists and is not an earlier `export --hf` folder; choose a new folder (nothing was written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    model = load_model(run_dir, info).eval()
    tmp = temp_dir(out.parent, f".{out.name}.hf-")
    try:
        model.save_pretrained(tmp)
        atomic_json(tmp / PROCESSOR_FILE, processor_config(info.preprocessing))
        exported = RunInfo(**{**dataclasses.asdict(info), "weights": "model"})  # the root's config.json: a full model
        exported.save(tmp)
        atomic_json(tmp / EXPORT_FILE, {"format": "hf", "source": str(run_dir.resolve()), "versions": versions()})
        report = read_report(run_dir)
        atomic_write(tmp / "README.md", card_text(exported, report, exported_from=run_dir.name))
        names = sorted(p.name for p in tmp.iterdir())
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return names


def _is_earlier_export(folder: Path) -> bool:
    """An empty folder, or one `export_hf` wrote (its export.json says so): the only folders it replaces."""
    if not folder.is_dir():
        return False
    try:
        return json.loads((folder / EXPORT_FILE).read_text()).get("format") == "hf"
    except (OSError, ValueError, AttributeError):
        return not any(os.scandir(folder))


# --- after training -----------------------------------------------------------


def publish(run_dir: str | Path, data=None) -> None:
    """What a finished ``train`` adds to its run folder: the transformers files and the model card.

    `data` (a `snapaction.data.dataset.Data`) gives the clip counts per class the card shows."""
    from .card import write_card
    from .run import RunInfo, update_report

    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    if data is not None:
        counts = {c: {"train": 0, "val": 0} for c in info.classes}
        for split in ("train", "val"):
            for sample in getattr(data, split):
                counts.setdefault(sample.label, {"train": 0, "val": 0})[split] += 1
        update_report(run_dir, clips_per_class=counts)
    try:
        write_run_files(run_dir, info)
    except RunError as err:  # no epoch finished: no weights to load, and the card says what there is
        log.warning("%s", err)
    write_card(run_dir)
