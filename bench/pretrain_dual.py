"""Dual masking (VideoMAE V2): how much decoder work it saves, and whether the model learns as well.

Two measurements, both on demo-like clips rendered in memory:

1. **cost**: the decoder's forward + backward time per step, and the whole
   step's, with every hidden tube decoded vs a running-cell half of them
   (`--decoder-ratio 0.5`), alternating the two in one process (median of
   --repeats); the reference is the same step without dual masking.
2. **loss**: two models from the same initial weights, trained for --steps
   on the same batches and masks, one with dual masking; both are then
   scored on the same held-out batches with every hidden tube decoded (the
   loss a full decoder sees), several mask draws, so the figures compare.

  python bench/pretrain_dual.py                 # tiny size, 300 steps each
  python bench/pretrain_dual.py --size small --steps 0   # cost only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def clips(n: int, seed: int, config):
    import numpy as np
    import torch

    from snapaction.demo.clips import CLASSES, render_clip

    side = config.image_size
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        frames = render_clip(CLASSES[i % 4], rng, size=side, num_frames=2 * config.num_frames)[::2]
        out.append(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    video = torch.stack(out)
    return (video - 0.45) / 0.225


def timed_step(model, optimizer, video, hidden, decode, objective):
    """(decoder seconds, step seconds) of one training step; the decoder is timed by hooks around it."""
    import torch

    from snapaction.pretrain.model import forward

    marks = {}

    def before(module, args):
        marks["fwd0"] = time.perf_counter()

    def after(module, args, out):
        marks["fwd1"] = time.perf_counter()

    h1 = model.decoder.register_forward_pre_hook(before)
    h2 = model.decoder.register_forward_hook(after)
    start = time.perf_counter()
    step = forward(model, video, hidden, objective, decode)
    # the decoder's backward runs first in backward: time it as the part until the encoder's output gets its gradient
    grad_mark = {}

    def mark(name):
        def hook(grad):
            grad_mark.setdefault(name, time.perf_counter())  # returns None: the gradient is left as it is
        return hook

    hook = step.prediction.register_hook(mark("b0"))
    encoded_hook = model.encoder_to_decoder.weight.register_hook(mark("b1"))
    optimizer.zero_grad()
    step.loss.backward()
    optimizer.step()
    end = time.perf_counter()
    for h in (h1, h2, hook, encoded_hook):
        h.remove()
    decoder = (marks["fwd1"] - marks["fwd0"]) + (grad_mark["b1"] - grad_mark["b0"])
    del torch
    return decoder, end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=300, help="training steps of each model for the loss comparison (0: cost only)")
    parser.add_argument("--ratio", type=float, default=0.5, help="--decoder-ratio")
    args = parser.parse_args()

    import torch
    from transformers import VideoMAEForPreTraining

    from snapaction.pretrain.model import Objective, decoder_tokens, forward, running_cell_mask, scratch_config, tube_mask

    torch.set_flush_denormal(True)
    config = scratch_config(args.size)
    plain, dual = Objective(target="pixels"), Objective(target="pixels", decoder_ratio=args.ratio)
    print(f"{args.size}: decoder tokens per clip {decoder_tokens(config, plain)[0]} -> {decoder_tokens(config, dual)[0]} "
          f"(reconstructed {decoder_tokens(config, plain)[1]} -> {decoder_tokens(config, dual)[1]})")
    torch.manual_seed(0)
    model = VideoMAEForPreTraining(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    video = clips(args.batch, 0, config)
    gen = torch.Generator().manual_seed(0)
    times = {"plain": [], "dual": []}
    for i in range(args.repeats + 1):
        for name, objective in (("plain", plain), ("dual", dual)):
            hidden = tube_mask(config, args.batch, objective.mask_ratio, gen)
            decode = running_cell_mask(config, args.batch, args.ratio, gen) if objective.decoder_ratio else None
            result = timed_step(model, optimizer, video, hidden, decode, objective)
            if i:  # the first of each warms up
                times[name].append(result)
    dec = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    step = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    print(f"decoder forward+backward: {dec['plain'] * 1000:.0f} ms -> {dec['dual'] * 1000:.0f} ms per step "
          f"({100 * (1 - dec['dual'] / dec['plain']):.0f}% less; goal >= 40%)")
    print(f"whole step: {step['plain'] * 1000:.0f} ms -> {step['dual'] * 1000:.0f} ms ({step['plain'] / step['dual']:.2f}x faster)")
    if not args.steps:
        return

    train = clips(256, 1, config)
    held = clips(64, 2, config)
    torch.manual_seed(1)
    start = VideoMAEForPreTraining(config).state_dict()
    scores = {}
    for name, objective in (("plain", plain), ("dual", dual)):
        model = VideoMAEForPreTraining(config)
        model.load_state_dict(start)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05)
        gen = torch.Generator().manual_seed(3)
        began = time.perf_counter()
        for s in range(args.steps):
            for group in optimizer.param_groups:
                group["lr"] = 1.5e-3 * min(1.0, (s + 1) / 30)
            idx = torch.randint(0, len(train), (args.batch,), generator=gen)
            hidden = tube_mask(config, args.batch, objective.mask_ratio, gen)
            decode = running_cell_mask(config, args.batch, args.ratio, gen)  # drawn for both: same random stream
            loss = forward(model, train[idx], hidden, objective, decode if objective.decoder_ratio else None).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - began
        model.eval()
        with torch.no_grad():
            losses = []
            for draw in range(5):
                g = torch.Generator().manual_seed(100 + draw)
                hidden = tube_mask(config, len(held), plain.mask_ratio, g)
                losses.append(float(forward(model, held, hidden, plain).loss))
        scores[name] = (statistics.mean(losses), statistics.stdev(losses), seconds)
        print(f"{name}: {args.steps} steps in {seconds:.0f} s; held-out loss (every hidden tube decoded) "
              f"{scores[name][0]:.4f} +- {scores[name][1]:.4f} over 5 mask draws", flush=True)
    (p, ps, pt), (d, ds, dt) = scores["plain"], scores["dual"]
    noise = (ps ** 2 + ds ** 2) ** 0.5
    print(f"dual masking: held-out loss {p:.4f} -> {d:.4f} ({100 * (d / p - 1):+.1f}%; the two differ by {abs(d - p) / noise:.1f} "
          f"times the spread between mask draws), training time {pt:.0f} s -> {dt:.0f} s ({pt / dt:.2f}x faster)")


if __name__ == "__main__":
    main()
