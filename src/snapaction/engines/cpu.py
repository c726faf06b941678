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
