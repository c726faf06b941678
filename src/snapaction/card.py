"""The model card: a run's ``README.md``, in the Hub's format (YAML metadata, then what the model is and how to use it).

Written by every ``train`` and rewritten by ``eval`` when it scores clips the
run never saw. Its metadata is huggingface_hub's `ModelCardData`:
``library_name``, ``pipeline_tag: video-classification``, ``base_model`` (a Hub
id only when the backbone came from the Hub), ``license`` (inherited from the
base where it is known, else left for the user to set, and the card says so),
and the validation and held-out accuracies as ``model-index``. The text has
no placeholders and no Markdown links, so nothing in it waits to be filled in.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

BASE_LICENSES = {
    "MCG-NJU/videomae-base": "cc-by-nc-4.0",
    "MCG-NJU/videomae-base-finetuned-kinetics": "cc-by-nc-4.0",
}
"""Licences of the bases SnapAction knows, by Hub id (the Hub's licence identifiers)."""

LICENSE_MEANING = {
    "cc-by-nc-4.0": "CC-BY-NC-4.0 allows non-commercial use only, with credit to the VideoMAE authors; a model fine-tuned "
                    "from it carries the same terms, so this model may not be used or shared for commercial purposes.",
}

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def loads_in_transformers(info) -> bool:
    """True for runs whose weights are a transformers video classifier (every form but pose and ONNX)."""
    return info.weights in ("adapter", "model", "head")


def hub_id(backbone: str) -> str | None:
    """`backbone` when it names a Hub repository (owner/name, not a folder on this machine), else None."""
    from .models.presets import preset

    if preset(backbone) is not None or os.path.exists(backbone) or not HUB_ID.match(backbone):
        return None
    return backbone


def card_data(info, report: dict):
    """The card's metadata (`huggingface_hub.ModelCardData`)."""
    from huggingface_hub import EvalResult, ModelCardData

    base = hub_id(info.backbone)
    results = []
    if report.get("val_accuracy") is not None:
        results.append(EvalResult(task_type="video-classification", dataset_type="snapaction-clips", dataset_name="validation clips",
                                  dataset_split="validation", metric_type="accuracy", metric_value=round(float(report["val_accuracy"]), 4)))
    for entry in report.get("held_out", []):
        for metric in ("accuracy", "macro_f1"):
            if entry.get(metric) is not None:
                results.append(EvalResult(task_type="video-classification", dataset_type="snapaction-clips",
                                          dataset_name=f"held-out clips {entry['data']}", dataset_split="test",
                                          dataset_config=entry["data"],  # the Hub groups results by type, config and split
                                          metric_type="f1" if metric == "macro_f1" else metric,
                                          metric_name="macro-F1" if metric == "macro_f1" else None,
                                          metric_value=round(float(entry[metric]), 4)))
    return ModelCardData(
        library_name="transformers" if loads_in_transformers(info) else "snapaction",
        pipeline_tag="video-classification",
        base_model=base,
        license=BASE_LICENSES.get(base) if base else None,
        tags=["video-classification", "snapaction", f"snapaction-{info.finetune}"],
        model_name=_name(info),
        eval_results=results or None,
    )


def _name(info) -> str:
    return f"snapaction {'-'.join(info.classes)}"[:96]


def card_text(info, report: dict, exported_from: str | None = None) -> str:
    """The whole ``README.md`` of a run (or of its `export --hf` folder, `exported_from` naming the run)."""
    from huggingface_hub import ModelCard

    data = card_data(info, report)
    body = "\n\n".join(part for part in (
        f"# {_name(info)}",
        _summary(info, report, exported_from),
        _classes(info, report),
        _recipe(info, report),
        _results(info, report),
        _usage(info),
        _licence(info),
        _limits(info, report),
    ) if part)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n"))


def write_card(run_dir: str | Path) -> Path:
    """Write (or rewrite) the run folder's ``README.md`` from its ``snapaction.json`` and ``report.json``."""
    from .files import atomic_write
    from .run import RunInfo, read_report

    run_dir = Path(run_dir)
    path = run_dir / "README.md"
    atomic_write(path, card_text(RunInfo.load(run_dir), read_report(run_dir)))
    return path


# --- sections -----------------------------------------------------------------


def _summary(info, report, exported_from) -> str:
    kind = {"lora": "fine-tuned with LoRA adapters (merged into the weights here)", "full": "fine-tuned in full",
            "probe": "with a frozen backbone and a trained linear head"}.get(info.finetune, info.finetune)
    what = "a pose model (body landmarks over time and a small classifier)" if info.weights == "pose" else \
        f"a video classifier on backbone {info.backbone}, {kind}"
    text = (f"A video classifier that tells apart {len(info.classes)} actions, trained with SnapAction from a few short clips "
            f"per class: {what}. It sees {info.sampling.get('num_frames')} frames per clip.")
    if exported_from:
        text += f" Exported with `snapaction export {exported_from} --hf` from the run of that name; its snapaction.json is kept here."
    return text


def _classes(info, report) -> str:
    counts = report.get("clips_per_class") or {}
    lines = ["## Classes", "", "| class | training clips | validation clips |", "|---|---|---|"]
    for name in info.classes:
        c = counts.get(name, {})
        lines.append(f"| {name} | {c.get('train', 'not recorded')} | {c.get('val', 'not recorded')} |")
    if not counts and info.clips:
        lines.append(f"\n{len(info.clips.get('train', []))} training and {len(info.clips.get('val', []))} validation clips in all.")
    return "\n".join(lines)


def _recipe(info, report) -> str:
    cfg = info.config
    lines = ["## Training", ""]
    if info.weights == "pose":
        pose = report.get("pose", {})
        lines.append(f"- landmarks of {info.sampling.get('num_frames')} frames per clip (MediaPipe), classifier chosen on validation: "
                     f"{pose.get('chosen', 'see report.json')}")
    else:
        lines += [
            f"- backbone: {info.backbone}; fine-tuning: {info.finetune}",
            f"- frames: {info.sampling.get('num_frames')}, sampled {info.sampling.get('mode')} over each clip",
            f"- input: {'x'.join(str(v) for v in info.preprocessing.get('crop', ()))} pixels, centre-cropped after resizing "
            f"the shorter side to {info.preprocessing.get('size')}",
        ]
        if info.finetune == "lora" and cfg.get("lora"):
            lora = cfg["lora"]
            lines.append(f"- LoRA rank {lora.get('lora_rank')}, alpha {lora.get('lora_alpha')}, on {', '.join(lora.get('lora_targets', []))}")
        if cfg:
            lines.append(f"- {report.get('epochs_run', '?')} of {cfg.get('epochs')} epochs (stopped by {report.get('stopped_by', 'epochs')}), "
                         f"best epoch {report.get('best_epoch')}, peak learning rate {cfg.get('lr')}, batch size {cfg.get('batch_size')}, "
                         f"label smoothing {cfg.get('label_smoothing')}, precision {report.get('precision', cfg.get('precision'))}")
        if info.masking:
            lines.append(f"- trained on masked clips ({info.masking.get('method', 'masking')}); snapaction predict masks new clips the same way, "
                         "transformers' pipeline does not")
    if report.get("seconds") is not None:
        lines.append(f"- training took {report['seconds']} s")
    return "\n".join(lines)


def _results(info, report) -> str:
    lines = ["## Results", ""]
    if report.get("val_accuracy") is not None:
        lines.append(f"- validation accuracy {float(report['val_accuracy']):.3f} (best epoch; these clips chose the epoch kept, "
                     "so the figure is optimistic)")
    held = report.get("held_out", [])
    for entry in held:
        f1 = f", macro-F1 {entry['macro_f1']:.3f}" if entry.get("macro_f1") is not None else ""
        lines.append(f"- held-out accuracy {entry['accuracy']:.3f}{f1} on {entry['clips']} clips of {entry['data']} "
                     f"(snapaction eval, {entry.get('views', 1)} view(s))")
    if not held:
        lines.append("- not yet scored on held-out clips: run `snapaction eval RUN CLIPS` on clips it never saw, "
                     "which adds the figures here")
    return "\n".join(lines)


def _usage(info) -> str:
    frames = info.sampling.get("num_frames")
    lines = ["## How to use", "", "With SnapAction, on clips, folders of clips or a webcam:", "", "```bash",
             "snapaction predict RUN clip.mp4", "snapaction serve RUN", "```", ""]
    if info.weights == "pose":
        lines += ["This is a pose model: transformers cannot load it. Load it in Python with SnapAction:", "", "```python",
                  "from snapaction.predict import Predictor", "", 'predictor = Predictor.load("RUN")',
                  'print(predictor.predict("clip.mp4").probabilities)', "```"]
        return "\n".join(lines)
    needs = ""
    if info.weights == "model" and info.backbone == "scratch":
        needs = "import snapaction.models.scratch  # registers the scratch network with transformers' Auto classes\n"
    lines += ["With transformers alone (the folder, or its Hub id once uploaded); the pipeline decodes with PyAV (pip install av):", "",
              "```python", f"{needs}from transformers import pipeline", "",
              'classify = pipeline("video-classification", model="RUN")',
              f'print(classify("clip.mp4", frame_sampling_rate=4))', "```", "",
              f"The pipeline reads {frames} frames from the start of the clip, every frame_sampling_rate frames; "
              f"SnapAction spreads the {frames} frames over the whole clip. For similar answers choose a rate near "
              f"the clip's frame count divided by {frames}; on a clip of exactly {frames} frames both read the same frames. "
              "AutoModelForVideoClassification.from_pretrained(\"RUN\") loads the model itself."]
    if needs:
        lines.append("\nThe scratch network is SnapAction's own architecture, so this needs SnapAction installed.")
    return "\n".join(lines)


def _licence(info) -> str:
    base = hub_id(info.backbone)
    licence = BASE_LICENSES.get(base) if base else None
    if licence:
        return f"## Licence\n\n{licence.upper()}, inherited from the base model {base}. {LICENSE_MEANING[licence]}"
    if info.backbone in ("scratch", "pose"):
        where = "it was trained from random weights on your own clips (no base model)"
    elif base:
        where = f"SnapAction does not know the licence of the base model {base}; read it on its Hub page"
    else:
        where = f"its base is the local folder {info.backbone}, whose licence SnapAction cannot know"
    return (f"## Licence\n\nNot set: {where}. Choose one and set it as license in the metadata at the top of this file "
            "before sharing; the licence of the clips it learned from matters too.")


def _limits(info, report) -> str:
    total = len(info.clips.get("train", [])) + len(info.clips.get("val", [])) if info.clips else None
    seen = f"{total} clips" if total else "a few dozen clips per class"
    held = report.get("held_out", [])
    lines = ["## Limits", "",
             f"- It learned from {seen}, most likely filmed by one camera, in one place, of few people: expect lower accuracy "
             "on other cameras, angles, lighting, backgrounds and people until it is judged on such clips.",
             f"- It only knows {', '.join(info.classes)}: every clip gets one of these, even a clip of none of them.",
             ("- Held-out figures above come from the clips named there only; other settings are untested." if held else
              "- It has not been tested on clips outside its own training folders."),
             "- The pipeline's frame sampling differs from SnapAction's (see How to use), so its probabilities can differ on long clips."]
    if info.weights == "pose":
        lines[-1] = "- It sees body landmarks only: a clip where MediaPipe finds no person gets an answer from no evidence."
    return "\n".join(lines)


def record_held_out(run_dir: str | Path, data: str, report: dict) -> None:
    """Keep an eval of clips the run never saw (`report`: what ``eval``'s report.json holds) and rewrite the card.

    One entry per data set: judging the same clips again replaces its figures. Not for export folders."""
    from .run import RunInfo, read_report, update_report

    info = RunInfo.load(run_dir)
    if info.weights == "onnx" or not read_report(run_dir):
        return
    entry = {"data": str(data), "clips": report.get("clips"), "accuracy": report.get("accuracy"),
             "macro_f1": report.get("macro_f1"), "views": report.get("views", 1) * report.get("crops", 1)}
    kept = [e for e in read_report(run_dir).get("held_out", []) if e.get("data") != entry["data"]]
    update_report(run_dir, held_out=kept + [entry])
    write_card(run_dir)
