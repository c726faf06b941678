"""Write a trained run as ONNX, to run it with onnxruntime (``--engine onnx``) or elsewhere.

  snapaction export runs/kitchen --onnx runs/kitchen-onnx
  snapaction export runs/kitchen --onnx runs/kitchen/onnx --int8   # also model.int8.onnx
  snapaction predict runs/kitchen-onnx clip.mp4                    # the export folder runs on onnxruntime

OUT gets model.onnx (LoRA merged, any batch size: pixel_values float32
(batch, frames, 3, height, width), normalised, in; logits out), the run's labels,
sampling and preprocessing (snapaction.json) and export.json, which records how
closely each file matched PyTorch fp32 on a check batch. Needs the optional
extra: pip install 'snapaction[onnx]'.
"""

from __future__ import annotations

import argparse

HELP = "write a run as ONNX (optionally int8) beside its labels and preprocessing"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by training")
    parser.add_argument("--onnx", required=True, metavar="OUT", help="folder to write the export into (e.g. RUN/onnx, which predict RUN --engine onnx finds)")
    parser.add_argument("--int8", action="store_true", help="also write model.int8.onnx, onnxruntime's dynamic int8 quantization (faster on a CPU; probabilities move a little)")


def run(args: argparse.Namespace) -> int:
    from ..run import RunInfo

    RunInfo.load(args.run)  # a wrong folder is said at once, before the model libraries load
    from ..engines.export import export_run

    report = export_run(args.run, args.onnx, int8=args.int8)
    for name, check in report["files"].items():
        print(f"wrote {args.onnx}/{name}: against PyTorch fp32, probabilities differ by at most "
              f"{check['max_abs_probability']:.2g}, top-1 agrees on {check['top1_agreement']:.0%} of the check batch")
    print(f"run it: snapaction predict {args.onnx} CLIPS  (or eval / serve {args.onnx})")
    return 0
