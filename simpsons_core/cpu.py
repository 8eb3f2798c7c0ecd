"""What this machine's CPU is: its name, its flags, a stable slug for reports and caches, and whether it has
bfloat16 matrix hardware. TensorFlow-free, so a run's record, the benchmark and the precision probe's cache
can name the CPU without starting TensorFlow.

Why it matters: the machines this project runs on change (an AMD EPYC with AVX2 only, Xeons with AVX-512,
Xeons with AMX-BF16), and which precision trains faster, and every benchmark figure, depends on which.

Example:

```python
cpu_kind()       # "intel-xeon-amx-bf16"
bf16_hardware()  # True on a CPU with AMX-BF16 or AVX512-BF16
```
"""

from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
# The matrix extensions a kind is named by, best first: a kind names the best one its CPU has.
KIND_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")
_KIND_WORDS = {"avx512f": "avx512"}  # a flag as the slug says it (others: "_" becomes "-")
# Words in CPU names that say nothing about the kind: trademarks, "CPU", "Processor", core counts.
_NOISE = re.compile(r"\((?:R|TM|tm|r)\)|\b(?:CPU|Processor|Genuine)\b|\b\d+-Core\b|@.*$", re.IGNORECASE)


@dataclass(frozen=True)
class CpuInfo:
    """A CPU as /proc/cpuinfo describes its first processor.

    Attributes:
        name: the model name ("AMD EPYC 7B13 64-Core Processor"); the platform's word for it where there is no
            /proc/cpuinfo.
        flags: its feature flags ("avx2", "amx_bf16", ...); empty where unknown.
    """

    name: str
    flags: frozenset[str]

    @property
    def kind(self) -> str:
        """A slug: vendor and family from the name, then the best of `KIND_FLAGS` the CPU has, e.g.
        "intel-xeon-amx-bf16", "intel-xeon-avx512", "amd-epyc-avx2" ("unknown-cpu" for an empty name)."""
        words = slug(_NOISE.sub(" ", self.name)).split("-")
        family = [word for word in words[:2] if word and not word.isdigit()] or ["unknown", "cpu"]
        best = next((flag for flag in KIND_FLAGS if flag in self.flags), None)
        if best:
            family.append(_KIND_WORDS.get(best, best.replace("_", "-")))
        return "-".join(family)

    @property
    def bf16_hardware(self) -> bool:
        """Whether the CPU multiplies bfloat16 matrices in hardware (AMX-BF16 or AVX512-BF16); without it,
        bfloat16 is emulated and much slower than float32."""
        return bool(self.flags & BF16_FLAGS)


def slug(text: str) -> str:
    """`text` lower-cased, each run of other characters than letters and digits one "-" ("NVIDIA H200" ->
    "nvidia-h200")."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor of a /proc/cpuinfo text: its "model name" and its "flags" (ARM's "Features")."""
    name, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
        if name and flags:
            break
    return CpuInfo(name, flags)


@functools.cache
def this_cpu() -> CpuInfo:
    """This machine's CPU (read once per process)."""
    try:
        info = parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError:  # not Linux
        info = CpuInfo("", frozenset())
    return info if info.name else CpuInfo(platform.processor() or platform.machine(), info.flags)


def cpu_name() -> str:
    return this_cpu().name


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags; empty on systems without /proc/cpuinfo."""
    return this_cpu().flags


def cpu_kind() -> str:
    """A stable slug for this CPU, for reports and caches (`CpuInfo.kind`)."""
    return this_cpu().kind


def bf16_hardware() -> bool:
    return this_cpu().bf16_hardware
