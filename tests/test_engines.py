"""Inference engines: ONNX export and onnxruntime, int8 and bf16 paths, each against PyTorch fp32 on the same clips."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from conftest import save_tiny_videomae, write_clip, COLOURS
from snapaction.cli import main
from snapaction.engines import FP32_TOLERANCE, cpu_flags, has_int8, has_native_bf16, resolve_precision
from snapaction.errors import ConfigError
from snapaction.predict import Predictor

INT8_TOLERANCE = 0.05
"""Largest probability difference int8 (either engine) may show on the trained tiny runs' clips."""
BF16_TOLERANCE = 0.05
"""Largest probability difference bf16 autocast may show against fp32 on the tiny VideoMAE run's clips."""


def lora_videomae_run(root: Path) -> Path:
    """A VideoMAE LoRA run folder built directly: LoRA weights made non-zero so that merging them matters."""
    from snapaction.models.backbone import LoraSettings, apply_lora, load_backbone
    from snapaction.preprocess import Preprocessing
    from snapaction.run import RunInfo, save_weights

    backbone = save_tiny_videomae(root / "backbone")
    classes = list(COLOURS)
    model, new = load_backbone(str(backbone), classes)
    model = apply_lora(model, new, LoraSettings())
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    run = root / "run"
    save_weights(model, run, "lora")
    RunInfo(classes=classes, backbone=str(backbone), finetune="lora", weights="adapter",
            sampling={"num_frames": 4, "mode": "uniform", "stride": 4, "grid": 16},
            preprocessing=Preprocessing.from_backbone(backbone).to_dict()).save(run)
    return run


@pytest.fixture(scope="module")
def videomae_run(tmp_path_factory) -> Path:
    return lora_videomae_run(tmp_path_factory.mktemp("videomae-run"))


def clips_of(run: Path, root: Path) -> list[Path]:
    data = run.parent / "data" / "test"
    if data.is_dir():
        return sorted(data.rglob("*.mp4"))[::2]  # one test clip per class
    return [write_clip(root / f"{label}.mp4", colour, seed=3) for label, colour in COLOURS.items()]


def model_inputs(predictor: Predictor, clips: list[Path]) -> list[torch.Tensor]:
    """Two views of each clip (a batch of 2, not the traced batch of 1), decoded once for every path compared."""
    return [predictor.views(c, views=2) for c in clips]


def probabilities(predictor: Predictor, inputs: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([predictor.probabilities(x).mean(0) for x in inputs])


def test_the_cpu_flags_are_read_and_decide_the_fast_precision(cpu, monkeypatch, caplog):
    from snapaction.engines.cpu import OVERRIDE, describe
    from snapaction.training.recipe import resolve_precision as training_precision

    assert cpu_flags("/nonexistent") == frozenset()
    assert has_native_bf16(frozenset({"avx2", "avx512_bf16"})) and not has_native_bf16(frozenset({"avx2", "fma"}))
    assert has_int8(frozenset({"avx2"})) and not has_int8(frozenset({"sse4_2"}))
    native = cpu.startswith("native-bf16")
    assert has_native_bf16() is native and ("bf16 native" in describe()) is native
    # every decision that depends on the CPU: inference's fast path, and training's and pretraining's precision
    assert resolve_precision("fast", "torch", "cpu") == ("bf16" if native else "int8")  # inference: forward only
    assert resolve_precision("fast", "onnx", "cpu") == "int8"  # onnxruntime has no bf16 path here
    on_cpu = torch.device("cpu")
    assert training_precision("auto", on_cpu) == ("bf16" if cpu == "native-bf16" else "no")
    assert training_precision("no", on_cpu) == "no"
    if cpu == "native-bf16-wrong-gradients":  # said once, and an explicit bf16 is refused with the way out
        assert "training in fp32, not bf16: SNAPACTION_BF16_TRAINING=broken" in caplog.text
        with pytest.raises(ConfigError, match="--precision bf16: .* train with --precision no"):
            training_precision("bf16", on_cpu)
    else:
        assert training_precision("bf16", on_cpu) == "bf16"
    monkeypatch.setenv(OVERRIDE, "sse2,sse4_2")  # commas too; no SIMD int8 kernels at all
    assert resolve_precision("fast", "torch", "cpu") == "fp32" and training_precision("auto", on_cpu) == "no"
    monkeypatch.delenv(OVERRIDE)
    assert cpu_flags() == cpu_flags("/proc/cpuinfo")  # without the override: this machine's own flags


def test_the_bf16_gradient_check_catches_a_wrong_kernel(monkeypatch):
    from snapaction.engines import cpu as hardware

    monkeypatch.delenv(hardware.BF16_CHECK, raising=False)
    hardware._check_bf16_gradients.cache_clear()
    found = hardware.bf16_training_problem()  # this machine's real answer: right, or a sentence saying what is wrong
    assert found is None or "bf16 weight gradient of a 3x3x3 convolution" in found
    conv3d = torch.nn.functional.conv3d

    def kernel(factor):  # bf16 convolutions computed in fp32 whose weight gradient is `factor` times the true one
        def conv(x, w, *args, **kwargs):
            if w.dtype != torch.bfloat16:
                return conv3d(x, w, *args, **kwargs)
            return conv3d(x.float(), (w * factor - w.detach() * (factor - 1)).float(), *args, **kwargs).bfloat16()
        return conv

    try:
        for factor, expected in ((1, None), (2, "off by 100% of its size against fp32")):
            monkeypatch.setattr(torch.nn.functional, "conv3d", kernel(factor))
            hardware._check_bf16_gradients.cache_clear()
            problem = hardware.bf16_training_problem()
            assert problem == expected if expected is None else expected in problem
    finally:
        hardware._check_bf16_gradients.cache_clear()


@pytest.mark.parametrize("which", ["videomae", "scratch"])
def test_export_round_trip_matches_pytorch(which, videomae_run, tiny_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'snapaction[onnx]')")
    run = videomae_run if which == "videomae" else tiny_run
    out = run / "onnx" if which == "videomae" else tmp_path / "export"  # RUN/onnx: where --engine onnx looks in a run
    assert main(["export", str(run), "--onnx", str(out), "--int8"]) == 0
    assert "top-1 agrees" in capsys.readouterr().out
    report = json.loads((out / "export.json").read_text())
    assert report["files"]["model.onnx"]["max_abs_probability"] <= FP32_TOLERANCE
    clips = clips_of(run, tmp_path)
    torch_predictor = Predictor.load(run, device="cpu")
    inputs = model_inputs(torch_predictor, clips)
    reference = probabilities(torch_predictor, inputs)
    onnx = Predictor.load(out)  # auto: an export folder runs on onnxruntime
    assert type(onnx.model).__name__ == "OnnxModel" and onnx.classes == torch_predictor.classes
    assert (probabilities(onnx, inputs) - reference).abs().max() <= FP32_TOLERANCE
    int8 = probabilities(Predictor.load(out if which == "scratch" else run, engine="onnx", precision="int8"), inputs)
    assert (int8 - reference).abs().max() <= INT8_TOLERANCE
    if which == "scratch":  # a trained model: its decisions must survive int8
        assert torch.equal(int8.argmax(1), reference.argmax(1))
        return
    # the command line runs the export folder, and says what it got
    assert main(["predict", str(out), str(clips[0]), "--json", str(tmp_path / "p.json")]) == 0
    written = json.loads((tmp_path / "p.json").read_text())["predictions"][0]["probabilities"]
    single = torch_predictor.predict(clips[0]).probabilities
    assert max(abs(written[c] - single[c]) for c in single) <= FP32_TOLERANCE


def test_torch_int8_against_fp32(tiny_run, videomae_run, tmp_path):
    fp32 = Predictor.load(tiny_run, device="cpu")
    inputs = model_inputs(fp32, clips_of(tiny_run, tmp_path))
    reference = probabilities(fp32, inputs)
    int8 = probabilities(Predictor.load(tiny_run, device="cpu", precision="int8"), inputs)
    assert torch.equal(int8.argmax(1), reference.argmax(1))
    assert (int8 - reference).abs().max() <= INT8_TOLERANCE
    quantized = Predictor.load(videomae_run, device="cpu", precision="int8").model
    assert "torch.ao.nn.quantized.dynamic.modules.linear" in {type(m).__module__ for m in quantized.modules()}


def test_torch_bf16_runs_where_the_cpu_has_it_and_says_so_where_not(cpu, videomae_run, tmp_path, caplog):
    fp32 = Predictor.load(videomae_run, device="cpu")
    inputs = model_inputs(fp32, clips_of(videomae_run, tmp_path))
    reference = probabilities(fp32, inputs)
    bf16 = Predictor.load(videomae_run, device="cpu", precision="bf16")
    got = probabilities(bf16, inputs)
    if cpu.startswith("native-bf16"):  # inference runs forward only: the gradient check does not matter
        assert type(bf16.model).__name__ == "Autocast" and "no native bf16" not in caplog.text
        assert 0 < (got - reference).abs().max() <= BF16_TOLERANCE  # really computed in bf16: close, not equal
    else:  # emulated bf16 is slower than fp32: the plain fp32 model runs, and a warning says so
        assert type(bf16.model).__name__ == "VideoMAEForVideoClassification"
        assert "no native bf16" in caplog.text and torch.equal(got, reference)


def test_engine_errors_are_one_sentence(tiny_run, tmp_path, capsys, monkeypatch):
    clip = clips_of(tiny_run, tmp_path)[0]
    assert main(["predict", str(tiny_run), str(clip), "--engine", "onnx"]) == 2
    assert "holds no model.onnx; export it once with `snapaction export" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="runs on --engine torch"):
        from snapaction.predict import load_predictor

        load_predictor(str(clip), backbone="scratch-x", engine="onnx")
    assert main(["export", str(tiny_run), "--onnx", str(tiny_run)]) == 2
    assert "is the run folder itself" in capsys.readouterr().err

    def fails(*args, **kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator foo\nmore detail")

    if importlib.util.find_spec("onnxruntime"):  # (without it, export stops before the exporter: checked below)
        monkeypatch.setattr(torch.onnx, "export", fails)
        assert main(["export", str(tiny_run), "--onnx", str(tmp_path / "failed")]) == 2
        err = capsys.readouterr().err
        assert "cannot export C3DForVideoClassification to ONNX (RuntimeError: Unsupported: ONNX export of operator foo)" in err
        assert not (tmp_path / "failed" / "model.onnx").exists()
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    assert main(["export", str(tiny_run), "--onnx", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "needs onnxruntime, which is not installed: pip install 'snapaction[onnx]'" in err
    assert err.count("\n") == 1
