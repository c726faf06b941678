"""Write a trained run as ONNX, to run it with onnxruntime (``--engine onnx``) or elsewhere.

  snapaction export runs/kitchen --onnx runs/kitchen-onnx
  snapaction export runs/kitchen --onnx runs/kitchen/onnx --int8   # also model.int8.onnx
  snapaction predict runs/kitchen-onnx clip.mp4                    # the export folder runs on onnxruntime
  snapaction export runs/kitchen --hf runs/kitchen-hf              # a transformers model folder, ready to upload

OUT gets model.onnx (LoRA merged, any batch size: pixel_values float32
(batch, frames, 3, height, width), normalised, in; logits out), the run's labels,
sampling and preprocessing (snapaction.json) and export.json, which records how
closely each file matched PyTorch fp32 on a check batch. Needs the optional
extra: pip install 'snapaction[onnx]'.

With --hf, OUT gets a self-contained transformers model folder (merged
weights, config with the run's labels, processor config, model card, the run's
snapaction.json): `pipeline("video-classification", model=OUT)` loads it where
SnapAction is not installed, and `hf upload USER/NAME OUT` shares it.
"""

from __future__ import annotations

import argparse

HELP = "write a run as ONNX (optionally int8), or as a transformers model folder to share (--hf)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by training")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--hf", metavar="OUT", help="folder to write a self-contained transformers model into (merged weights, config, processor config, model card), e.g. RUN-hf")
    target.add_argument("--onnx", metavar="OUT", help="folder to write the export into (e.g. RUN/onnx, which predict RUN --engine onnx finds)")
    parser.add_argument("--int8", action="store_true", help="also write model.int8.onnx, onnxruntime's dynamic int8 quantization (faster on a CPU; probabilities move a little)")


def run(args: argparse.Namespace) -> int:
    from ..run import RunInfo

    RunInfo.load(args.run)  # a wrong folder is said at once, before the model libraries load
    if args.hf:
        from ..errors import ConfigError
        from ..hf import export_hf

        if args.int8:
            raise ConfigError("--int8 quantizes an ONNX export; it does not apply to --hf")
        names = export_hf(args.run, args.hf)
        print(f"wrote {args.hf}/: {', '.join(names)}")
        print(f"load it: pipeline('video-classification', model='{args.hf}') with transformers; share it: hf upload USER/NAME {args.hf}")
        return 0
    from ..engines.export import export_run

    report = export_run(args.run, args.onnx, int8=args.int8)
    for name, check in report["files"].items():
        print(f"wrote {args.onnx}/{name}: against PyTorch fp32, probabilities differ by at most "
              f"{check['max_abs_probability']:.2g}, top-1 agrees on {check['top1_agreement']:.0%} of the check batch")
    print(f"run it: snapaction predict {args.onnx} CLIPS  (or eval / serve {args.onnx})")
    return 0

