"""Section 1, the hardware bound: fp32 matrix-multiply GFLOP/s and each model's training FLOP per image."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Job, errors, run_alternating, stats
from benchmarks.report import Section, Table

MODELS = ("tutorial", "compact")
IMAGE_SIZE = 64
NUM_CLASSES = 4


def measure_matmul(size: int = 3072, trials: int = 5, seconds_per_trial: float = 1.0) -> dict[str, Any]:
    """Best fp32 GFLOP/s of `tf.linalg.matmul` on two `size` x `size` matrices, using every core."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    b = tf.random.normal((size, size), dtype=tf.float32)
    multiply = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    multiply().numpy()
    rates = []
    for _ in range(trials):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds_per_trial:
            multiply().numpy()
            count += 1
        rates.append(2 * size**3 * count / (time.perf_counter() - started) / 1e9)
    return {"gflops": max(rates), "gflops_trials": rates, "size": size}


def measure_model_flops(
    model: str, image_size: int = IMAGE_SIZE, num_classes: int = NUM_CLASSES
) -> dict[str, Any]:
    from benchmarks.flops import forward_flops, profiler_forward_flops, training_flops
    from simpsons_core.training.models import build_model

    net = build_model(model, image_size, num_classes)
    return {
        "forward_mflop": forward_flops(net) / 1e6,
        "train_mflop": training_flops(net) / 1e6,
        "profiler_forward_mflop": profiler_forward_flops(net, image_size) / 1e6,
        "parameters": net.count_params(),
    }


def cpu_description() -> str:
    """CPU model, cores and the vector extensions that matter for fp32 and bfloat16 matrix work."""
    name, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    import os

    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")
    present = [flag for flag in wanted if flag in flags] if flags else ["unknown"]
    missing = [flag for flag in wanted if flag not in flags] if flags else []
    text = f"{name}, {os.cpu_count()} cores, with {' '.join(present)}"
    return text + (f", without {' '.join(missing)}" if missing else "")


def run(ctx: Context) -> Section:
    section = Section("hardware", "Hardware bound")
    size = 1024 if ctx.quick else 3072
    params = {"size": size, "trials": 3, "seconds_per_trial": 0.3} if ctx.quick else {"size": size}
    matmul = run_alternating([Job("matmul", "matmul", params)], ctx.repeats, ctx.log)["matmul"]
    gflops = stats(matmul, "gflops")
    flops_runs = run_alternating(
        [Job(model, "model_flops", {"model": model}) for model in MODELS], 1, ctx.log
    )
    section.raw = {"matmul": matmul, "model_flops": flops_runs}
    problems = errors(matmul) + [e for runs in flops_runs.values() for e in errors(runs)]
    section.error = "; ".join(problems)
    if gflops is None:
        return section
    section.tables.append(
        Table(
            ["Matrix multiply", "GFLOP/s (median of best per process)", "min", "max"],
            [[f"fp32 {size}x{size}, tf.linalg.matmul", gflops.median, gflops.low, gflops.high]],
        )
    )
    rows, bounds = [], {}
    for model, runs in flops_runs.items():
        if errors(runs):
            continue
        figures = runs[0]
        bounds[model] = gflops.median * 1e3 / figures["train_mflop"]
        rows.append(
            [
                model,
                figures["parameters"],
                figures["forward_mflop"],
                figures["profiler_forward_mflop"],
                figures["train_mflop"],
                bounds[model],
            ]
        )
    section.tables.append(
        Table(
            [
                f"Model ({IMAGE_SIZE} px)",
                "Parameters",
                "Forward MFLOP/image",
                "Forward MFLOP/image (TF profiler)",
                "Trained MFLOP/image",
                "Best possible images/s",
            ],
            rows,
        )
    )
    ctx.results["bound_images_per_second"] = bounds
    ctx.results["matmul_gflops"] = gflops.median
    section.notes = [
        f"CPU: {cpu_description()}.",
        "Trained FLOP = forward + weight gradients + input gradients of every weighted layer but the first, "
        "counted from the layer shapes (convolutions and dense layers only). The TF profiler's forward count "
        "adds bias adds and activations and so runs a little higher.",
        "Best possible images/s = matmul GFLOP/s / trained FLOP per image: what a step would reach if every "
        "FLOP ran at the speed of one large matrix multiply. Training figures below are also given as a "
        "fraction of it.",
    ]
    return section
