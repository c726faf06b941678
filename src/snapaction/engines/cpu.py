"""What this CPU can do fast, read from its feature flags (``/proc/cpuinfo``), never assumed.

Machines differ: some have AVX-512 with native bf16 (``avx512_bf16``, ``amx_bf16``),
some only AVX2, where bf16 is emulated and slower than fp32. Int8 matrix products
run on every x86-64 CPU with AVX2 (``vpmaddubsw``); VNNI (``avx512_vnni``,
``avx_vnni``, ``amx_int8``) makes them faster still.

Every choice that depends on the CPU reads it through `cpu_flags`, and the
environment variable ``SNAPACTION_CPU_FLAGS`` (space- or comma-separated flags)
replaces what ``/proc/cpuinfo`` says: the tests run both sides of every
precision decision on any machine with it, and a user can rule out a fast path
that misbehaves on their CPU.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8")
SHOWN = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "asimd", "bf16", "i8mm")
"""The flags that decide the choices below, in the order a report lists them."""


OVERRIDE = "SNAPACTION_CPU_FLAGS"
"""Environment variable whose flags replace this CPU's own, for every decision below (tests set it)."""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (x86 ``flags``, ARM ``Features``); empty where the file cannot be read.

    Without `cpuinfo`, ``SNAPACTION_CPU_FLAGS`` wins where it is set, else ``/proc/cpuinfo`` is read (once)."""
    if cpuinfo is None:
        forced = os.environ.get(OVERRIDE)
        if forced is not None:
            return frozenset(forced.replace(",", " ").split())
        cpuinfo = "/proc/cpuinfo"
    return _read_flags(cpuinfo)


@functools.lru_cache(maxsize=None)
def _read_flags(cpuinfo: str) -> frozenset[str]:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when bf16 matrix products run in hardware (x86 AVX-512 BF16 or AMX, ARM ``bf16``)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in NATIVE_BF16) or ("bf16" in flags and platform.machine() in ("aarch64", "arm64"))


BF16_CHECK = "SNAPACTION_BF16_TRAINING"
"""Environment variable that replaces the outcome of `bf16_training_problem`'s check: ``ok``, or ``broken`` (tests set it)."""


def bf16_training_problem() -> str | None:
    """None where training in bf16 on this CPU computes the right gradients; else what went wrong, in one sentence.

    Having the instructions is not enough: on an AMD EPYC with AVX-512 BF16 (torch 2.13's CPU build), the bf16
    weight gradient of a 3x3x3 convolution over small feature maps (the scratch preset's last blocks) came back
    different on every call, up to four times its own size and sometimes NaN, so training in bf16 there drifted to
    NaN while fp32 learnt. A known-answer check of those kernels against fp32 runs once per process, where a
    precision decision needs it (a few milliseconds).
    """
    forced = os.environ.get(BF16_CHECK)
    if forced is not None:
        return None if forced == "ok" else f"{BF16_CHECK}={forced} says this CPU's bf16 gradients are wrong"
    return _check_bf16_gradients()


@functools.lru_cache(maxsize=None)
def _check_bf16_gradients() -> str | None:
    import torch

    gen = torch.Generator().manual_seed(0)
    for shape, out_channels in (((2, 64, 2, 4, 4), 128), ((2, 128, 2, 4, 4), 128), ((2, 32, 4, 8, 8), 64)):
        x = torch.randn(shape, generator=gen).bfloat16()
        w = (torch.randn(out_channels, shape[1], 3, 3, 3, generator=gen) * 0.05).bfloat16()
        dy = torch.randn(shape[0], out_channels, *shape[2:], generator=gen).bfloat16()
        reference = None
        for layout in (torch.contiguous_format, torch.channels_last_3d, torch.channels_last_3d):  # the last twice: repeatable?
            for dtype in ((torch.float32,) if reference is None else ()) + (torch.bfloat16,):
                weight = w.to(dtype).contiguous(memory_format=layout).clone().requires_grad_()  # a fresh leaf each time
                y = torch.nn.functional.conv3d(x.to(dtype).contiguous(memory_format=layout), weight, padding=1)
                y.backward(dy.to(dtype).contiguous(memory_format=layout))
                grad = weight.grad.float()
                if reference is None:
                    reference = grad
                    continue
                error = float((grad - reference).abs().max() / reference.abs().max())
                if not error <= 0.05:  # bf16 rounds to ~0.4%; NaN fails too
                    return (f"the bf16 weight gradient of a 3x3x3 convolution over {tuple(shape)} is wrong on this CPU "
                            f"(off by {error:.0%} of its size against fp32)")
    return None


def has_int8(flags: frozenset[str] | None = None) -> bool:
    """True when int8 matrix products have SIMD kernels here (AVX2 or better on x86, ``asimd`` on ARM)."""
    flags = cpu_flags() if flags is None else flags
    return "avx2" in flags or "asimd" in flags or any(f in flags for f in INT8_DOT)


def describe(flags: frozenset[str] | None = None) -> str:
    """One line for reports: the flags that matter, and what they mean for bf16 and int8."""
    flags = cpu_flags() if flags is None else flags
    seen = [f for f in SHOWN if f in flags]
    bf16 = "native" if has_native_bf16(flags) else "emulated (slower than fp32)"
    int8 = "VNNI" if any(f in flags for f in INT8_DOT) else ("AVX2" if has_int8(flags) else "none")
    return f"{platform.processor() or platform.machine()}: flags {' '.join(seen) or 'unknown'}; bf16 {bf16}; int8 kernels {int8}"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, which containers and `taskset` narrow), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
