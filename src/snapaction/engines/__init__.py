"""Inference engines: which code runs a trained model, at which precision, chosen per machine and overridable.

- engine ``torch`` (a run folder's default): PyTorch, SDPA attention, LoRA merged;
  precision ``fp32`` (the reference), ``bf16`` (autocast, only where the CPU has
  native bf16, else fp32 with a warning), ``int8`` (dynamic quantization of the
  linear layers), or ``fast`` (bf16 where native, else int8).
- engine ``onnx`` (an export folder's default): the file ``snapaction export RUN --onnx OUT``
  wrote, run by onnxruntime; ``fp32`` or ``int8`` (onnxruntime's dynamic quantization,
  written by ``export --int8``).

fp32 on either engine matches PyTorch fp32 within `FP32_TOLERANCE`; bf16 and int8
change probabilities by more, so they are opt-in and never a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..errors import ConfigError, did_you_mean
from .cpu import cpu_flags, describe, has_int8, has_native_bf16  # noqa: F401  (their home; imported from here too)

ENGINES = ("auto", "torch", "onnx")
PRECISIONS = ("fp32", "bf16", "int8", "fast")
SEEK_MODES = ("exact", "fast")
FP32_TOLERANCE = 1e-4
"""Largest difference in any class probability allowed between an fp32 path and PyTorch fp32 (tests and export check it)."""
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
EXPORT_FILE = "export.json"


@dataclass(frozen=True)
class Inference:
    """How predict, eval and serve run the model (the ``inference`` options of those commands)."""

    engine: str = option("auto", "what runs the model: torch, or onnx for a folder `snapaction export --onnx` wrote; "
                         "auto (default) takes onnx for an export folder and torch for a run folder", choices=ENGINES)
    precision: str = option("fp32", "fp32 (default: the reference), int8 (dynamic quantization of the linear layers: "
                            "faster on a CPU, probabilities move a little), bf16 (only where the CPU or GPU has it), "
                            "fast (bf16 where native, else int8)", choices=PRECISIONS)
    seek: str = option("exact", "exact (default: the frames training saw) or fast: for long clips whose sampled frames lie "
                       "further apart than their keyframes, the keyframe nearest each (far fewer frames decoded)",
                       choices=SEEK_MODES)


def resolve_precision(precision: str, engine: str, device: str = "cpu") -> str:
    """'fp32', 'bf16' or 'int8' for `engine` ('torch' or 'onnx') on `device`; ``fast`` becomes this machine's quickest."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r} is not one of {list(PRECISIONS)}.{did_you_mean(precision, PRECISIONS)}")
    on_cpu = not str(device).startswith("cuda")
    if precision == "fast":
        if not on_cpu or engine == "torch" and has_native_bf16():
            return "bf16"
        return "int8" if has_int8() else "fp32"
    if engine == "onnx" and precision == "bf16":
        raise ConfigError("the onnx engine runs fp32 or int8; for bf16 use --engine torch")
    return precision


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r} is not one of {list(ENGINES)}.{did_you_mean(engine, ENGINES)}")


def onnx_folder(folder: Path) -> Path | None:
    """Where an ONNX export of `folder` is: the folder itself (an export folder) or its ``onnx/`` subfolder."""
    for where in (folder, folder / "onnx"):
        if (where / ONNX_FILES["fp32"]).is_file():
            return where
    return None


def check_plain(engine: str, precision: str, seek: str, what: str) -> None:
    """`ConfigError` when a model that has one way to run (a pose run) is asked for another."""
    if engine not in ("auto", "torch") or precision != "fp32" or seek != "exact":
        raise ConfigError(f"{what} runs one way only; leave out --engine {engine} --precision {precision} --seek {seek}")


def load_engine(run_dir: str | Path, info, engine: str = "auto", precision: str = "fp32", device: str | None = None):
    """The model of a run (or an export folder) ready for `Predictor`: called as ``model(pixel_values=x).logits``.

    `info` is the folder's `snapaction.run.RunInfo`. ``auto`` is onnx for an export
    folder and torch for a run folder."""
    import torch

    from ..run import load_model

    check_engine(engine)
    run_dir = Path(run_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    exported = info.weights == "onnx"
    if engine == "auto":
        engine = "onnx" if exported else "torch"
    precision = resolve_precision(precision, engine, str(device))
    if engine == "torch":
        if exported:
            raise ConfigError(f"{run_dir} is an ONNX export: run it with --engine onnx, or pass the run folder it came from "
                              f"(named in {run_dir / EXPORT_FILE}) for --engine torch")
        from .pytorch import torch_model

        return torch_model(load_model(run_dir, info), precision, device)
    from .onnx import OnnxModel

    folder = onnx_folder(run_dir)
    if folder is None:
        raise ConfigError(f"{run_dir} holds no {ONNX_FILES['fp32']}; export it once with "
                          f"`snapaction export {run_dir} --onnx {run_dir / 'onnx'}` (add --int8 for the int8 model)")
    path = folder / ONNX_FILES[precision]
    if not path.is_file():
        raise ConfigError(f"{folder} has no {path.name}; export the run again with --int8 to write it")
    return OnnxModel(path, device=str(device))
