"""``snapaction export``: a run written as ONNX, with its labels and preprocessing beside it, checked against PyTorch.

The export folder holds ``model.onnx`` (LoRA merged, dynamic batch), with
``--int8`` also ``model.int8.onnx`` (onnxruntime's dynamic quantization),
``snapaction.json`` (the run's classes, sampling and preprocessing; weights
``onnx``) and ``export.json`` (where it came from and how closely each file
matched PyTorch fp32 on a check batch). `snapaction.predict.Predictor.load`
runs the folder with onnxruntime.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from ..errors import ConfigError
from . import EXPORT_FILE, FP32_TOLERANCE, ONNX_FILES

log = logging.getLogger(__name__)


def agreement(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """How far logits `other` (B, K) are from `reference` (B, K): max abs logit and probability difference, top-1 agreement."""
    p, q = torch.softmax(reference.float(), -1), torch.softmax(other.float(), -1)
    return {"max_abs_logit": float((reference - other).abs().max()), "max_abs_probability": float((p - q).abs().max()),
            "top1_agreement": float((p.argmax(-1) == q.argmax(-1)).float().mean())}


def check_input(info, batch: int, seed: int = 0) -> torch.Tensor:
    """A normalised-looking random batch (B, T, C, h, w) of the run's input size."""
    crop = info.preprocessing["crop"]
    frames = info.sampling["num_frames"]
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, crop[0], crop[1], generator=generator)


def export_run(run_dir: str | Path, out: str | Path, int8: bool = False) -> dict:
    """Write the ONNX export of a run into `out` (see the module doc); returns what ``export.json`` holds.

    `ConfigError` when the run's model cannot be exported, or when the exported
    fp32 model differs from PyTorch by more than `FP32_TOLERANCE` in any probability."""
    from ..files import atomic_json, building
    from ..run import RunInfo, load_model, versions
    from .onnx import OPSET, OnnxModel, export_model, quantize_model, require_onnxruntime

    run_dir, out = Path(run_dir), Path(out)
    info = RunInfo.load(run_dir)
    if info.weights in ("pose", "onnx"):
        raise ConfigError(f"{run_dir} holds a {'pose model' if info.weights == 'pose' else 'ONNX export'}; "
                          "export takes a run folder of a video network (scratch, VideoMAE, ...)")
    if out.resolve() == run_dir.resolve():
        raise ConfigError(f"--onnx {out} is the run folder itself; pass a new folder, e.g. {run_dir / 'onnx'}")
    _check_out(out)
    require_onnxruntime()
    model = load_model(run_dir, info).eval()
    with building(out) as new:  # an earlier export stays whole in `out` until this one is complete and checked
        path = export_model(model, check_input(info, 1), new / ONNX_FILES["fp32"])
        check = check_input(info, 3, seed=1)  # not the traced batch size: the batch axis must really be dynamic
        with torch.no_grad():
            reference = model(pixel_values=check).logits
        files = {"fp32": agreement(reference, OnnxModel(path)(pixel_values=check).logits)}
        if files["fp32"]["max_abs_probability"] > FP32_TOLERANCE:
            raise ConfigError(f"the exported {out / path.name} differs from PyTorch by {files['fp32']['max_abs_probability']:.2g} in a "
                              f"probability (allowed {FP32_TOLERANCE:g}); run this model with --engine torch")
        if int8:
            quantized = quantize_model(path, new / ONNX_FILES["int8"])
            files["int8"] = agreement(reference, OnnxModel(quantized)(pixel_values=check).logits)
        RunInfo(**{**dataclasses.asdict(info), "weights": "onnx"}).save(new)
        report = {"source": str(run_dir.resolve()), "opset": OPSET, "input": "pixel_values float32 (batch, T, C, H, W), normalised",
                  "output": "logits float32 (batch, classes)", "check": "a random batch of 3 against PyTorch fp32",
                  "files": {ONNX_FILES[k]: v for k, v in files.items()}, "versions": versions()}
        atomic_json(new / EXPORT_FILE, report)
    return report


def _check_out(out: Path) -> None:
    """`out` may be missing, empty, or an earlier export (which the new one replaces whole); anything else is
    refused with a sentence, before anything is written, since replacing it would delete the files there."""
    from ..run import RUN_FILE, RunInfo, is_run

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--onnx {out} is a file; pass a folder for the export (e.g. RUN/onnx)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    ours = {*ONNX_FILES.values(), RUN_FILE, EXPORT_FILE}
    if (is_run(out) and RunInfo.load(out).weights == "onnx") or {p.name for p in out.iterdir()} <= ours:
        return
    raise ConfigError(f"--onnx {out} holds files that are not an export of SnapAction's; pass a new or empty folder "
                      "(an earlier export there is replaced), SnapAction will not delete them")
