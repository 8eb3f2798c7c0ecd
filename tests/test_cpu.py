"""The CPU as /proc/cpuinfo describes it: name, flags, a stable kind for reports and caches, bfloat16
hardware; and the module never starts TensorFlow."""

from __future__ import annotations

import subprocess
import sys

from simpsons_core.cpu import CpuInfo, cpu_flags, cpu_kind, cpu_name, parse_cpuinfo, slug

# Abridged from real machines: two processors each, flags cut to the interesting ones.
EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2 sha_ni
bogomips\t: 4899.99

processor\t: 1
model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2 sha_ni
"""
XEON_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
XEON_AVX512 = """model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl
"""
ZEN4 = """model name\t: AMD EPYC 9B14 96-Core Processor
flags\t\t: avx2 avx512f avx512_bf16 avx512_vnni
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics bf16 i8mm
CPU implementer\t: 0x41
"""


def test_an_avx2_epyc_is_named_and_has_no_bf16_hardware() -> None:
    cpu = parse_cpuinfo(EPYC)
    assert cpu.name == "AMD EPYC 7B13 64-Core Processor"
    assert {"avx2", "fma"} <= cpu.flags and "avx512f" not in cpu.flags
    assert cpu.kind == "amd-epyc-avx2"
    assert not cpu.bf16_hardware


def test_a_xeon_with_amx_is_named_by_its_best_extension() -> None:
    cpu = parse_cpuinfo(XEON_AMX)
    assert cpu.kind == "intel-xeon-amx-bf16"
    assert cpu.bf16_hardware
    assert parse_cpuinfo(XEON_AVX512).kind == "intel-xeon-avx512"
    assert not parse_cpuinfo(XEON_AVX512).bf16_hardware


def test_avx512_bf16_alone_counts_as_bf16_hardware() -> None:
    cpu = parse_cpuinfo(ZEN4)
    assert cpu.kind == "amd-epyc-avx512-bf16" and cpu.bf16_hardware


def test_a_cpuinfo_without_a_model_name_or_x86_flags_still_gets_a_kind() -> None:
    arm = parse_cpuinfo(GRAVITON)
    assert arm.name == "" and "asimd" in arm.flags
    assert arm.kind == "unknown-cpu" and not arm.bf16_hardware
    assert parse_cpuinfo("").flags == frozenset()
    assert CpuInfo("Apple M2", frozenset()).kind == "apple-m2"


def test_slugs_are_lower_case_words_joined_by_dashes() -> None:
    assert slug("NVIDIA H200") == "nvidia-h200"
    assert slug("  Intel(R) Xeon(R)  ") == "intel-r-xeon-r"


def test_this_machine_has_a_name_and_a_kind() -> None:
    assert cpu_name()
    assert cpu_kind() == slug(cpu_kind())
    assert isinstance(cpu_flags(), frozenset)


def test_the_module_leaves_tensorflow_unimported() -> None:
    code = (
        "import sys\nfrom simpsons_core import cpu\ncpu.cpu_kind()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stderr
