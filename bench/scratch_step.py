"""Training-step time of the scratch preset at the demo's geometry (batch 16, 8 frames of 64x64), with the
input in the default memory layout against channels-last 3D, which the preset now uses; alternating, medians.

Run: ``python bench/scratch_step.py [--steps 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from snapaction.models.presets import PRESETS  # noqa: E402


def step_ms(model, optimizer, x, y, steps: int, layout) -> float:
    """Median milliseconds of `steps` training steps with the convolutions fed `layout`."""
    original = model.c3d.forward
    model.c3d.forward = lambda inp: original(inp.contiguous(memory_format=layout))
    times = []
    try:
        for _ in range(steps):
            start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(pixel_values=x).logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        model.c3d.forward = original
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, _ = PRESETS["scratch"].build(["pick", "drop", "open", "close"])
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(16, 8, 3, 64, 64), torch.randint(0, 4, (16,))
    step_ms(model, optimizer, x, y, 2, torch.contiguous_format)  # warm up both paths
    step_ms(model, optimizer, x, y, 2, torch.channels_last_3d)
    plain, last = [], []
    for _ in range(args.rounds):  # alternating, so a busy moment hits both
        plain.append(step_ms(model, optimizer, x, y, args.steps, torch.contiguous_format))
        last.append(step_ms(model, optimizer, x, y, args.steps, torch.channels_last_3d))
    p, c = statistics.median(plain), statistics.median(last)
    print(f"scratch preset, batch 16 x 8 x 64x64, {torch.get_num_threads()} threads: "
          f"default layout {p:.0f} ms/step, channels-last 3D {c:.0f} ms/step: {p / c:.2f}x faster")


if __name__ == "__main__":
    main()
