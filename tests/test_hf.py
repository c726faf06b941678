"""A run is a Hugging Face model: transformers' own loading and pipeline, the model card, export --hf."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from conftest import COLOURS, save_tiny_videomae, write_clip
from snapaction.cli import main

PIPELINE_TOLERANCE = 0.01
"""Largest probability difference between transformers' pipeline and `snapaction predict` on a clip of exactly
`num_frames` frames, where both read the same frames: SnapAction resizes while decoding (PyAV), the pipeline's
processor in Pillow, so the pixels differ by a rounding or two (measured: 0.0012 on the LoRA run, 0.0062 on the full run)."""

PLACEHOLDERS = ("More Information Needed", "[", "TODO", "{{")


def short_clips(root: Path, frames: int = 4) -> list[Path]:
    """One clip per colour of exactly `frames` frames: the pipeline (the first `frames` frames) and SnapAction
    (`frames` spread over the clip) then read the same frames."""
    return [write_clip(root / f"{label}.mp4", colour, seed=3, t=frames) for label, colour in COLOURS.items()]


def full_videomae_run(root: Path) -> Path:
    """A full fine-tune run built directly (model/ folder), its head made distinct so classes differ."""
    from snapaction.models.backbone import load_backbone
    from snapaction.preprocess import Preprocessing
    from snapaction.run import RunInfo, save_weights

    backbone = save_tiny_videomae(root / "backbone", seed=2)
    classes = list(COLOURS)
    model, _ = load_backbone(str(backbone), classes)
    torch.manual_seed(2)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
    run = root / "run"
    save_weights(model, run, "full")
    RunInfo(classes=classes, backbone=str(backbone), finetune="full", weights="model",
            sampling={"num_frames": 4, "mode": "uniform", "stride": 4, "grid": 16},
            preprocessing=Preprocessing.from_backbone(backbone).to_dict()).save(run)
    return run


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> Path:
    from test_engines import lora_videomae_run

    from snapaction.hf import write_run_files

    run = lora_videomae_run(tmp_path_factory.mktemp("hf-lora"))
    write_run_files(run)
    return run


def pipeline_and_predict(run: Path, clips: list[Path]):
    from transformers import pipeline

    from snapaction.predict import Predictor

    classify = pipeline("video-classification", model=str(run))
    predictor = Predictor.load(run, device="cpu")
    for clip in clips:
        scores = {r["label"]: r["score"] for r in classify(str(clip))}
        yield scores, predictor.predict(clip)


def test_lora_run_loads_in_transformers_and_its_pipeline_agrees_with_predict(lora_run, tmp_path):
    from transformers import AutoModelForVideoClassification

    assert not (lora_run / "adapter_config.json").exists()  # beside merged weights transformers would apply it twice
    assert (lora_run / "adapter" / "adapter_model.safetensors").is_file()
    model = AutoModelForVideoClassification.from_pretrained(str(lora_run))
    assert [model.config.id2label[i] for i in range(3)] == list(COLOURS)
    compared = 0
    for scores, predicted in pipeline_and_predict(lora_run, short_clips(tmp_path)):
        assert set(scores) == set(COLOURS)
        assert max(scores, key=scores.get) == predicted.label
        for label, p in predicted.probabilities.items():
            assert abs(scores[label] - p) < PIPELINE_TOLERANCE, (label, scores[label], p)
        compared += 1
    assert compared == 3


def test_lora_run_keeps_its_adapter_and_reloads_after_another_epoch(lora_run, tmp_path):
    """A resumed run writes a new adapter into the root: the older merged copy goes, the newer adapter is loaded."""
    from snapaction.hf import adapter_dir
    from snapaction.run import load_model

    run = tmp_path / "run"
    shutil.copytree(lora_run, run)
    x = torch.randn(1, 4, 3, 32, 32)
    before = load_model(run)(pixel_values=x).logits
    shutil.copy(run / "adapter" / "adapter_model.safetensors", run / "adapter_model.safetensors")
    shutil.copy(run / "adapter" / "adapter_config.json", run / "adapter_config.json")
    assert adapter_dir(run) == run
    from snapaction.hf import clear_merged

    clear_merged(run)
    assert not (run / "model.safetensors").exists() and not (run / "config.json").exists()
    torch.testing.assert_close(load_model(run)(pixel_values=x).logits, before)


def test_full_run_loads_as_it_is_without_a_second_copy_of_its_weights(tmp_path):
    from snapaction.hf import INDEX_FILE, write_run_files

    run = full_videomae_run(tmp_path)
    assert write_run_files(run) == ["config.json", INDEX_FILE, "preprocessor_config.json"]
    assert not (run / "model.safetensors").exists()
    assert set(json.loads((run / INDEX_FILE).read_text())["weight_map"].values()) == {"model/model.safetensors"}
    tops = set()
    for scores, predicted in pipeline_and_predict(run, short_clips(tmp_path)):
        assert max(scores, key=scores.get) == predicted.label
        assert max(abs(scores[c] - p) for c, p in predicted.probabilities.items()) < PIPELINE_TOLERANCE
        tops.add(predicted.label)
    assert len(tops) > 1 or max(predicted.probabilities.values()) < 0.9  # the comparison is not between two constant answers


def test_processor_config_is_what_snapaction_does(lora_run):
    from snapaction.hf import processor_config
    from snapaction.run import RunInfo

    info = RunInfo.load(lora_run)
    config = processor_config(info.preprocessing)
    assert json.loads((lora_run / "preprocessor_config.json").read_text()) == config
    assert config["size"] == {"shortest_edge": 32} and config["crop_size"] == {"height": 32, "width": 32}
    assert config["image_mean"] == [0.485, 0.456, 0.406] and config["resample"] == 2
    assert not (lora_run / "video_preprocessor_config.json").exists()  # a video processor would need torchvision


def test_scratch_run_loads_where_snapaction_registers_it_and_its_card_says_so(tiny_run):
    import snapaction.models.scratch  # noqa: F401  what the card tells users to import
    from huggingface_hub import ModelCard
    from transformers import AutoModelForVideoClassification

    model = AutoModelForVideoClassification.from_pretrained(str(tiny_run))
    assert model.config.model_type == "snapaction_c3d"
    card = ModelCard.load(tiny_run / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "video-classification"
    assert card.data.base_model is None and card.data.license is None
    assert "import snapaction.models.scratch" in card.text
    assert "Not set: it was trained from random weights on your own clips" in card.text
    assert "| red | 4 |" in card.text or "| red | 3 |" in card.text  # the class table has the clip counts
    for text in PLACEHOLDERS:
        assert text not in card.content, text


def test_card_of_a_hub_base_inherits_its_licence_and_lists_the_figures():
    from huggingface_hub import ModelCard

    from snapaction.card import card_text
    from snapaction.run import RunInfo

    info = RunInfo(classes=["fall", "sit"], backbone="MCG-NJU/videomae-base", finetune="lora", weights="adapter",
                   sampling={"num_frames": 16, "mode": "uniform"}, preprocessing={"size": 224, "crop": [224, 224]},
                   config={"epochs": 30, "lr": 5e-4, "batch_size": 8, "label_smoothing": 0.1,
                           "lora": {"lora_rank": 16, "lora_alpha": 32, "lora_targets": ["query", "value"]}},
                   clips={"train": ["a"] * 40, "val": ["b"] * 8})
    report = {"val_accuracy": 0.875, "best_epoch": 12, "epochs_run": 20, "clips_per_class": {"fall": {"train": 20, "val": 4}},
              "held_out": [{"data": "clips-test", "clips": 10, "accuracy": 0.8, "macro_f1": 0.79, "views": 1}]}
    text = card_text(info, report)
    card = ModelCard(text)
    card.validate = None  # parsing is the check; validate() would ask the Hub
    data = card.data
    assert data.base_model == "MCG-NJU/videomae-base" and data.license == "cc-by-nc-4.0"
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert results == {("validation", "accuracy"): 0.875, ("test", "accuracy"): 0.8, ("test", "f1"): 0.79}
    assert "non-commercial use only" in card.text
    assert "| fall | 20 | 4 |" in card.text and "| sit | not recorded |" in card.text
    assert "held-out accuracy 0.800, macro-F1 0.790 on 10 clips of clips-test" in card.text
    for placeholder in PLACEHOLDERS:
        assert placeholder not in text, placeholder


def test_eval_on_held_out_clips_adds_its_figures_to_the_card(tiny_run, tmp_path):
    from huggingface_hub import ModelCard

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    test_data = tiny_run.parent / "data" / "test"
    assert main(["eval", str(run), str(test_data), "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    card = ModelCard.load(run / "README.md")
    held = [r for r in card.data.eval_results if r.dataset_split == "test" and r.metric_type == "accuracy"
            and r.dataset_name == f"held-out clips {test_data}"]  # tiny_run is shared: other tests judge it on other copies
    assert [r.metric_value for r in held] == [round(report["accuracy"], 4)]
    assert f"on {report['clips']} clips of {test_data}" in card.text
    assert main(["eval", str(run), str(test_data), "--out", str(tmp_path / "eval2")]) == 0  # the same clips again: replaced
    held_out = json.loads((run / "report.json").read_text())["held_out"]
    assert [h["data"] for h in held_out].count(str(test_data)) == 1
    other = tmp_path / "other-test"  # a second held-out set keeps its own name on the card (the Hub groups by config)
    shutil.copytree(test_data, other)
    assert main(["eval", str(run), str(other), "--out", str(tmp_path / "eval3")]) == 0
    names = {r.dataset_name for r in ModelCard.load(run / "README.md").data.eval_results if r.dataset_split == "test"}
    assert {f"held-out clips {test_data}", f"held-out clips {other}"} <= names


def test_export_hf_loads_without_snapaction_and_replaces_only_its_own_folder(lora_run, tmp_path, capsys):
    out = tmp_path / "kitchen-hf"
    assert main(["export", str(lora_run), "--hf", str(out)]) == 0
    assert "hf upload USER/NAME" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "config.json", "export.json", "model.safetensors", "preprocessor_config.json", "snapaction.json"]
    assert not list(tmp_path.glob(".kitchen-hf*"))  # the temporary sibling was swapped in
    clip = short_clips(tmp_path)[0]
    from snapaction.predict import Predictor

    expected = Predictor.load(lora_run, device="cpu").predict(clip)
    import os

    import snapaction

    site, src = sysconfig.get_paths()["purelib"], str(Path(snapaction.__file__).parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # -S: no .pth files, so no editable install either
    code = (f"import sys; sys.path[:] = [p for p in sys.path if p != {src!r}] + [{site!r}]\n"
            "import importlib.util, json\n"
            "assert importlib.util.find_spec('snapaction') is None, 'snapaction is importable'\n"
            "from transformers import pipeline\n"
            f"print(json.dumps(pipeline('video-classification', model={str(out)!r})({str(clip)!r})))\n")
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = {r["label"]: r["score"] for r in json.loads(done.stdout.strip().splitlines()[-1])}
    assert max(scores, key=scores.get) == expected.label
    assert max(abs(scores[c] - p) for c, p in expected.probabilities.items()) < PIPELINE_TOLERANCE
    # snapaction predicts from the export too, and a second export replaces the first
    assert Predictor.load(out, device="cpu").predict(clip).label == expected.label
    (out / "stale.txt").write_text("from the first export")
    assert main(["export", str(lora_run), "--hf", str(out)]) == 0
    assert not (out / "stale.txt").exists()


def test_export_hf_refuses_a_folder_it_did_not_write(lora_run, tmp_path, capsys):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    assert main(["export", str(lora_run), "--hf", str(keep)]) == 2
    assert "already exists and is not an earlier `export --hf` folder" in capsys.readouterr().err
    assert (keep / "notes.txt").read_text() == "mine"
    assert main(["export", str(lora_run), "--hf", str(lora_run / "hf")]) == 2
    assert "is inside the run folder" in capsys.readouterr().err


def test_the_readme_upload_leaves_out_checkpoints_and_reports(lora_run, tmp_path):
    from huggingface_hub.utils import filter_repo_objects

    from snapaction.hf import UPLOAD_EXCLUDE

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "hf upload USER/NAME runs/kitchen " + " ".join(f'--exclude "{p}"' for p in UPLOAD_EXCLUDE) in readme
    run = tmp_path / "run"
    shutil.copytree(lora_run, run)
    for name in ("checkpoint/optimizer.bin", "checkpoint/state.json", "eval-test/report.json", "curves.png"):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("x")
    files = [p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()]
    kept = sorted(filter_repo_objects(files, ignore_patterns=list(UPLOAD_EXCLUDE)))
    assert kept == ["config.json", "model.safetensors", "preprocessor_config.json", "snapaction.json"]


def test_a_pose_card_says_how_to_load_it_and_that_transformers_cannot():
    from huggingface_hub import ModelCard

    from snapaction.card import card_text
    from snapaction.run import RunInfo

    info = RunInfo(classes=["fall", "walk"], backbone="pose", finetune="full", weights="pose",
                   sampling={"num_frames": 16}, preprocessing={}, clips={"train": ["a"] * 6, "val": ["b"] * 2})
    card = ModelCard(card_text(info, {"val_accuracy": 1.0, "pose": {"chosen": "temporal"}}))
    assert card.data.library_name == "snapaction" and card.data.pipeline_tag == "video-classification"
    assert 'Predictor.load("RUN")' in card.text and "transformers cannot load it" in card.text
    assert "from transformers import pipeline" not in card.text
    for placeholder in PLACEHOLDERS:
        assert placeholder not in card.content, placeholder
