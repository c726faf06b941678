"""Per-clip prediction, end to end (decode + preprocess + model), for every engine and precision this machine has,
against the transformers documentation pipeline on the same clips in the same run.

Reference ("docs"): decode every frame with PyAV up to the last wanted one, keep
16, transformers' VideoMAE image processor (the Pillow/numpy one), the fp32 model
(transformers' own, SDPA attention). SnapAction: ``Predictor`` on a run folder
of the same checkpoint, one view per clip, on each path of `snapaction.engines`.

The model is a VideoMAE-base-sized classification checkpoint with random weights
(16 frames of 224x224, 12 layers of width 768, 400 classes: it costs what a real
one costs), saved once under bench/.cache with MCG-NJU/videomae-base's processor
config; ONNX exports of it (fp32 and int8) are written there too. Clips: the
shared real clips (720p-1080p and small ones).

Printed: the CPU flags seen; the model's FLOPs per view (counted by PyTorch's
FlopCounterMode); the measured matmul rate (fp32, and int8 through the same
dynamically quantized linear layer the int8 path runs); the floor (FLOPs over
the rate; for int8, the linear layers at the int8 rate and the rest at fp32);
then per path: medians of alternating runs, end to end and model alone, the
ratio to the docs pipeline (end to end) and to the floor (model); how far each
path's probabilities are from fp32 PyTorch on these clips; and, with
``--processes N``, whole processes (``snapaction predict`` on the clips against
bench/docs_predict.py on the same clips: imports and loading included).

    python bench/infer.py [--repeats 3] [--clips a.mp4 b.mp4] [--paths torch-fp32 onnx-int8 ...] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

from decode import VIDEOMAE_BASE_CONFIG, image_processor, read_video_pyav  # noqa: E402
from snapaction.engines import describe  # noqa: E402

CACHE = HERE / ".cache"
REAL = HERE.resolve().parents[1] / "shared" / "data" / "real-clips"
CLIPS = ("shaking_hands.mp4", "drink_water.avi", "arm_wrestling.mp4")
PATHS = {  # name -> (engine, precision)
    "torch-fp32": ("torch", "fp32"),
    "torch-int8": ("torch", "int8"),
    "torch-bf16": ("torch", "bf16"),
    "onnx-fp32": ("onnx", "fp32"),
    "onnx-int8": ("onnx", "int8"),
}
GOAL_RATIO, GOAL_FLOOR = 3.0, 1.3


# --- the checkpoint, its run folder and exports ------------------------------------------


def checkpoint(cache: Path) -> Path:
    """A random-weight VideoMAE-base classification checkpoint with the base processor config (saved once)."""
    folder = cache / "videomae-base-random-k400"
    if not (folder / "model.safetensors").is_file():
        import torch
        from transformers import VideoMAEConfig, VideoMAEForVideoClassification

        print(f"writing {folder} (once) ...", flush=True)
        torch.manual_seed(0)
        labels = {i: f"class_{i:03d}" for i in range(400)}
        config = VideoMAEConfig(use_mean_pooling=True, id2label=labels, label2id={v: k for k, v in labels.items()})
        VideoMAEForVideoClassification(config).save_pretrained(folder)
        (folder / "preprocessor_config.json").write_text(json.dumps(VIDEOMAE_BASE_CONFIG, indent=2))
    return folder


def run_folder(cache: Path, folder: Path) -> Path:
    """A SnapAction run folder whose trained model is `folder` (as full fine-tuning writes it)."""
    from snapaction.preprocess import Preprocessing
    from snapaction.run import RunInfo

    run = cache / "run-videomae-base-random"
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "model").exists():
        (run / "model").symlink_to(folder.resolve(), target_is_directory=True)
    config = json.loads((folder / "config.json").read_text())
    classes = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    RunInfo(classes=classes, backbone=str(folder), finetune="full", weights="model",
            sampling={"num_frames": 16, "mode": "uniform", "stride": 4, "grid": None},
            preprocessing=Preprocessing.from_backbone(folder).to_dict()).save(run)
    return run


def exported(cache: Path, run: Path) -> Path:
    from snapaction.engines.export import export_run

    out = cache / "onnx-videomae-base-random"
    if not (out / "model.int8.onnx").is_file():
        print(f"exporting {out} (once; checks it against PyTorch on a batch of 3) ...", flush=True)
        export_run(run, out, int8=True)
    return out


# --- rates and the floor -----------------------------------------------------------------


def model_flops(model, x) -> tuple[float, float]:
    """(all FLOPs, FLOPs in linear layers) of one forward on `x`."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(pixel_values=x)
    total = counter.get_total_flops()
    by_op = counter.get_flop_counts()["Global"]
    linear = sum(v for op, v in by_op.items() if str(op).split(".")[1] in ("addmm", "mm"))
    return float(total), float(linear)


def matmul_rates(repeats: int = 7) -> dict[str, float]:
    """GFLOP/s of one VideoMAE-base MLP matmul (1568x768 @ 768x3072): fp32, and int8 via torch's dynamic quantized linear."""
    import torch

    from snapaction.engines.pytorch import quantize_int8

    m, k, n = 1568, 768, 3072
    x = torch.randn(m, k)
    layers = {"fp32": torch.nn.Linear(k, n).eval()}
    layers["int8"] = quantize_int8(torch.nn.Sequential(torch.nn.Linear(k, n))).eval()
    rates = {}
    with torch.no_grad():
        for name, layer in layers.items():
            layer(x)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                layer(x)
                times.append(time.perf_counter() - t)
            rates[name] = 2 * m * k * n / statistics.median(times) / 1e9
    return rates


# --- the ways ----------------------------------------------------------------------------


def docs_way(folder: Path):
    """The documentation pipeline as (load seconds, fn(path) -> (probs, model seconds))."""
    import av
    import torch
    from transformers import AutoModelForVideoClassification

    from snapaction.data.sampling import uniform_indices

    started = time.perf_counter()
    model = AutoModelForVideoClassification.from_pretrained(folder).eval()
    processor = image_processor(folder)

    def run(path: Path):
        with av.open(str(path)) as container:
            video = read_video_pyav(container, uniform_indices(container.streams.video[0].frames, 16))
        inputs = processor(list(video), return_tensors="pt")
        t = time.perf_counter()
        with torch.no_grad():
            probs = model(**inputs).logits.softmax(-1)[0]
        return probs, time.perf_counter() - t

    return time.perf_counter() - started, run


def snapaction_way(run_dir: Path, engine: str, precision: str):
    from snapaction.predict import Predictor

    started = time.perf_counter()
    predictor = Predictor.load(run_dir, device="cpu", engine=engine, precision=precision)

    def run(path: Path):
        x = predictor.views(path)
        t = time.perf_counter()
        probs = predictor.probabilities(x)[0]
        return probs, time.perf_counter() - t

    return time.perf_counter() - started, run


def whole_processes(folder: Path, run: Path, onnx: Path, clips: list[Path], paths: list[str], repeats: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    commands = {"docs": [sys.executable, str(HERE / "docs_predict.py"), str(folder), *map(str, clips)]}
    for name in paths:
        engine, precision = PATHS[name]
        target = onnx if engine == "onnx" else run
        commands[name] = [sys.executable, "-m", "snapaction", "predict", str(target), *map(str, clips),
                          "--engine", engine, "--precision", precision, "--top", "1", "--device", "cpu"]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            t = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t)
    docs = statistics.median(times["docs"])
    print(f"\nwhole processes on {len(clips)} clips (imports and loading included), median of {repeats}:")
    print(f"  {'docs script':<22} {docs:7.1f} s")
    for name in paths:
        s = statistics.median(times[name])
        print(f"  {'snapaction ' + name:<22} {s:7.1f} s   {docs / s:4.2f}x the docs script   goal >= {GOAL_RATIO:g}x: "
              f"{'met' if docs / s >= GOAL_RATIO else 'NOT met'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path on each clip (default: 3)")
    parser.add_argument("--clips", nargs="+", type=Path, default=[REAL / c for c in CLIPS])
    parser.add_argument("--paths", nargs="+", choices=sorted(PATHS), default=None,
                        help="paths to time (default: all this machine runs natively: bf16 only with native bf16)")
    parser.add_argument("--processes", type=int, default=0, help="also time whole processes, N runs each (default: 0, off)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)

    import onnxruntime
    import torch
    import transformers

    from snapaction.engines import has_native_bf16

    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / ".gitignore").write_text("*\n")
    paths = args.paths or [p for p in PATHS if p != "torch-bf16" or has_native_bf16()]
    print(f"CPU: {describe()}; {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads, "
          f"{torch.backends.cpu.get_cpu_capability()}), transformers {transformers.__version__}, onnxruntime {onnxruntime.__version__}")
    folder = checkpoint(args.cache)
    run = run_folder(args.cache, folder)
    onnx = exported(args.cache, run) if any(p.startswith("onnx") for p in paths) else None

    load_s, docs = docs_way(folder)
    ways = {"docs": docs}
    loads = {"docs": load_s}
    for name in paths:
        engine, precision = PATHS[name]
        loads[name], ways[name] = snapaction_way(onnx if engine == "onnx" else run, engine, precision)

    x = torch.randn(1, 16, 3, 224, 224)
    from transformers import AutoModelForVideoClassification

    # eager attention for the count: FlopCounterMode sees its matmuls, not the CPU's fused SDPA kernel
    flops, linear = model_flops(AutoModelForVideoClassification.from_pretrained(folder, attn_implementation="eager").eval(), x)
    rates = matmul_rates()  # measured again between the timed rounds below, since the machine's load moves
    measured = {k: [v] for k, v in rates.items()}

    for way in ways.values():  # warm-up: first-call costs, file cache
        way(args.clips[0])
    times = {name: {c: [] for c in args.clips} for name in ways}
    probs = {name: {} for name in ways}
    for _ in range(args.repeats):
        for kind, rate in matmul_rates(3).items():
            measured[kind].append(rate)
        for clip in args.clips:
            for name, way in ways.items():  # alternating, so load from elsewhere spreads over every path
                t = time.perf_counter()
                p, model_s = way(clip)
                times[name][clip].append((time.perf_counter() - t, model_s))
                probs[name][clip] = p

    rates = {k: statistics.median(v) for k, v in measured.items()}
    floor = {"fp32": flops / (rates["fp32"] * 1e9), "int8": linear / (rates["int8"] * 1e9) + (flops - linear) / (rates["fp32"] * 1e9)}
    print(f"model: {flops / 1e9:.0f} GFLOP per 16-frame view ({linear / flops:.0%} in linear layers)")
    print(f"matmul 1568x768 @ 768x3072, median of {len(measured['fp32'])} measurements between the rounds: fp32 {rates['fp32']:.0f} GFLOP/s, "
          f"int8 (dynamic quantized linear) {rates['int8']:.0f} GFLOP/s")
    print(f"floor per view: fp32 {floor['fp32']:.2f} s, int8 (linear layers at the int8 rate, the rest at fp32) {floor['int8']:.2f} s")

    def median(name, k):
        return statistics.median(statistics.median(t[k] for t in runs) for runs in times[name].values())

    print(f"\nper clip, median over {len(args.clips)} clips of the median of {args.repeats} alternating runs "
          f"({', '.join(c.name for c in args.clips)}):")
    docs_e2e = median("docs", 0)
    print(f"  {'path':<11} {'load s':>7} {'end to end s':>13} {'model s':>8} {'vs docs':>8} {'model/floor':>12} "
          f"{'max |dp| vs torch-fp32':>23} {'top-1 same':>10}")
    reference = probs.get("torch-fp32") or probs["docs"]
    for name in ways:
        e2e, model_s = median(name, 0), median(name, 1)
        kind = "int8" if name.endswith("int8") else "fp32"
        dp = max(float((probs[name][c] - reference[c]).abs().max()) for c in args.clips)
        same = sum(int(probs[name][c].argmax() == reference[c].argmax()) for c in args.clips)
        print(f"  {name:<11} {loads[name]:7.1f} {e2e:13.2f} {model_s:8.2f} {docs_e2e / e2e:7.2f}x "
              f"{model_s / floor[kind]:11.2f}x {dp:23.2g} {same:>6}/{len(args.clips)}")
    best = min(paths, key=lambda n: median(n, 0))
    ratio = docs_e2e / median(best, 0)
    print(f"best path {best}: {ratio:.2f}x the docs pipeline end to end (goal >= {GOAL_RATIO:g}x: "
          f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}), model at "
          f"{median(best, 1) / floor['int8' if best.endswith('int8') else 'fp32']:.2f}x its floor (goal <= {GOAL_FLOOR:g}x)")
    print("(probabilities of random weights over 400 classes are near uniform: the differences above show the paths "
          "compute the same function, not how often a trained model's answer changes; tests/test_engines.py checks that "
          "on a trained run)")
    if args.processes:
        whole_processes(folder, run, onnx, args.clips, paths, args.processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
