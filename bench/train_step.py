"""Training cost at VideoMAE-base geometry (16 frames of 224x224, random weights: same cost as real ones).

For LoRA, LoRA with gradient checkpointing, LoRA with token dropping (half of
each clip's tokens kept, as ``train --token-keep 0.5``; with and without
checkpointing), full fine-tuning, and probe-mode feature extraction, at batch 2: clips per second (median over timed steps)
and the peak resident memory of a process doing only that. Each mode runs in
its own process so peaks do not mix. Prints the ratio of every figure to the
named reference: LoRA memory against the 3 GB goal, speeds against full
fine-tuning.

    python bench/train_step.py [--steps 3] [--device cpu|cuda] [--modes lora lora+tokens50 ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

MODES = ("lora", "lora+checkpointing", "lora+tokens50", "lora+tokens50+checkpointing", "full", "probe")
TOKEN_KEEP = 0.5  # the share of tokens the +tokens50 modes keep (train --token-keep 0.5)
GOAL_LORA_GB = 3.0


def measure(mode: str, steps: int, device: str) -> dict:
    import resource

    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    from snapaction.models.backbone import LoraSettings, apply_lora, count_parameters, pooled_features

    torch.manual_seed(0)
    config = VideoMAEConfig(num_labels=4, use_mean_pooling=True)  # the defaults are VideoMAE-base's geometry
    model = VideoMAEForVideoClassification(config).to(device)
    x = torch.randn(2, 16, 3, 224, 224, device=device)
    y = torch.tensor([0, 1], device=device)
    if mode.startswith("lora"):
        if "checkpointing" in mode:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = apply_lora(model, ["classifier", "fc_norm"], LoraSettings())
    trainable, total = count_parameters(model)
    dropped = {}
    if "tokens" in mode:
        from snapaction.models.tokens import drop_mask, token_count

        dropped["bool_masked_pos"] = drop_mask(2, token_count(model), TOKEN_KEEP, torch.Generator().manual_seed(0)).to(device)
    if mode == "probe":  # the backbone stays frozen; only a linear head on the cached features trains
        trainable = sum(p.numel() for p in model.classifier.parameters())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4) if mode != "probe" else None
    times = []
    for step in range(steps + 1):  # the first step warms up and is not timed
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if mode == "probe":
            model.eval()
            pooled_features(model, x)
        else:
            model.train()
            loss = torch.nn.functional.cross_entropy(model(pixel_values=x, **dropped).logits, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if device == "cuda":
        peak_gb = torch.cuda.max_memory_allocated() / 2**30
    return {"mode": mode, "clips_per_s": 2 / statistics.median(times), "peak_gb": peak_gb, "trainable": trainable, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode (default: 3)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="modes to measure (default: all)")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, in a child process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.steps, args.device)))
        return
    results = {}
    for mode in args.modes:
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--steps", str(args.steps), "--device", args.device],
                             capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    reference = "full" if "full" in results else args.modes[0]
    full = results[reference]["clips_per_s"]
    memory = "GPU memory" if args.device == "cuda" else "peak RSS"
    print(f"VideoMAE-base geometry, batch 2, {args.device}, median of {args.steps} steps")
    print(f"{'mode':<28} {'clips/s':>8} {'x ' + reference:>9} {memory:>10} {'trainable':>12}")
    for mode, r in results.items():
        print(f"{mode:<28} {r['clips_per_s']:8.3f} {r['clips_per_s'] / full:9.2f} {r['peak_gb']:8.2f} GB {r['trainable']:>12,}")
    for mode in [m for m in results if m.startswith("lora")]:
        gb = results[mode]["peak_gb"]
        print(f"{mode} peak {gb:.2f} GB = {gb / GOAL_LORA_GB:.2f} x the {GOAL_LORA_GB:.0f} GB goal ({'met' if gb <= GOAL_LORA_GB else 'not met'})")


if __name__ == "__main__":
    main()
