"""ONNX: a model written to one ``.onnx`` file (LoRA already merged, any batch size) and run with onnxruntime.

``pixel_values`` float32 (B, T, C, H, W) in, ``logits`` float32 (B, K) out;
B is a dynamic axis. onnxruntime and onnx are the optional extra ``onnx``
(``pip install 'snapaction[onnx]'``); they are imported only here, inside the
functions that need them.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..errors import ConfigError

OPSET = 17
INPUT, OUTPUT = "pixel_values", "logits"
INSTALL = "pip install 'snapaction[onnx]' (or: pip install onnxruntime onnx)"


def require_onnxruntime():
    """The onnxruntime module; `ConfigError` with the install command when it is missing."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"the ONNX engine needs onnxruntime, which is not installed: {INSTALL}") from None
    return onnxruntime


def export_model(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Write `model` (eval, fp32, CPU) to `path` as ONNX, tracing it on `example` (B, T, C, H, W);
    `ConfigError` naming the model and the reason when the exporter cannot convert it."""
    model = model.cpu().eval()

    class Logits(torch.nn.Module):  # the exporter wants tensors out, not a ModelOutput
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model(pixel_values=pixel_values).logits

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python branches on constant shapes
            torch.onnx.export(Logits().eval(), (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, opset_version=OPSET,
                              dynamo=False, do_constant_folding=True)
    except Exception as err:  # the exporter raises many kinds; all mean this model cannot be written
        path.unlink(missing_ok=True)
        raise ConfigError(f"cannot export {type(model).__name__} to ONNX ({type(err).__name__}: {str(err).splitlines()[0][:300]}); "
                          "run it with --engine torch instead") from None
    return path


def quantize_model(src: Path, dst: Path) -> Path:
    """onnxruntime's dynamic int8 quantization of `src` (weights int8, activations quantized per call) into `dst`."""
    require_onnxruntime()
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:  # onnxruntime without onnx
        raise ConfigError(f"int8 quantization needs the onnx package too ({err}): {INSTALL}") from None
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice on calibration pre-processing is for static quantization
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return dst


class OnnxModel:
    """An ONNX file run by onnxruntime, called like a transformers model: ``model(pixel_values=x).logits``."""

    def __init__(self, path: str | Path, threads: int | None = None, device: str = "cpu"):
        ort = require_onnxruntime()
        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors for damaged or foreign files
            raise ConfigError(f"onnxruntime cannot load {self.path} ({str(err).splitlines()[0][:300]}); export the run again") from None
        self.config = None

    def __call__(self, pixel_values: torch.Tensor):
        x = np.ascontiguousarray(pixel_values.detach().cpu().numpy(), dtype=np.float32)
        (logits,) = self.session.run([OUTPUT], {INPUT: x})
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def to(self, device) -> "OnnxModel":
        return self  # the session was placed when it was made

    def eval(self) -> "OnnxModel":
        return self
