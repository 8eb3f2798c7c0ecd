"""Section 1, the hardware bound: float32 and bfloat16 matrix-multiply GFLOP/s and each model's training FLOP
per image. A training figure is compared with the bound of the precision it computed in."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Job, errors, run_alternating, stats
from benchmarks.report import Section, Table

MODELS = ("tutorial", "compact")
IMAGE_SIZE = 64
NUM_CLASSES = 4
PRECISIONS = ("float32", "bfloat16")  # TensorFlow's dtype names; mixed bfloat16 computes in the second


def measure_matmul(
    size: int = 3072, trials: int = 5, seconds_per_trial: float = 1.0, dtype: str = "float32"
) -> dict[str, Any]:
    """Best GFLOP/s of `tf.linalg.matmul` on two `size` x `size` matrices of `dtype`, using every core."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)
    multiply = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    multiply().numpy()
    rates = []
    for _ in range(trials):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds_per_trial:
            multiply().numpy()
            count += 1
        rates.append(2 * size**3 * count / (time.perf_counter() - started) / 1e9)
    return {"gflops": max(rates), "gflops_trials": rates, "size": size, "dtype": dtype}


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
    """CPU model, its kind (`simpsons_core.cpu`), cores and the vector extensions that matter for fp32 and
    bfloat16 matrix work."""
    import os

    from simpsons_core.cpu import cpu_flags, cpu_kind, cpu_name

    name, flags = f"{cpu_name()} ({cpu_kind()})", cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")
    present = [flag for flag in wanted if flag in flags] if flags else ["unknown"]
    missing = [flag for flag in wanted if flag not in flags] if flags else []
    text = f"{name}, {os.cpu_count()} cores, with {' '.join(present)}"
    return text + (f", without {' '.join(missing)}" if missing else "")


def matmul_size(ctx: Context) -> int:
    return 1024 if ctx.quick else 3072


def measure_bounds(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Matrix-multiply GFLOP/s in both precisions, alternated in fresh processes; the medians go to
    `ctx.results["matmul_gflops"]` (see `Context.gflops`). Returns the runs per precision."""
    size = matmul_size(ctx)
    params = {"size": size, "trials": 3, "seconds_per_trial": 0.3} if ctx.quick else {"size": size}
    jobs = [Job(dtype, "matmul", {**params, "dtype": dtype}) for dtype in PRECISIONS]
    runs = run_alternating(jobs, ctx.repeats, ctx.log)
    medians = {dtype: stats(runs[dtype], "gflops") for dtype in PRECISIONS}
    ctx.results["matmul_gflops"] = {dtype: s.median for dtype, s in medians.items() if s}
    return runs


def run(ctx: Context) -> Section:
    from simpsons_core.cpu import bf16_hardware, cpu_kind

    section = Section("hardware", "Hardware bound")
    size = matmul_size(ctx)
    matmul = measure_bounds(ctx)
    flops_runs = run_alternating(
        [Job(model, "model_flops", {"model": model}) for model in MODELS], 1, ctx.log
    )
    section.raw = {"matmul": matmul, "model_flops": flops_runs}
    problems = [e for runs in (*matmul.values(), *flops_runs.values()) for e in errors(runs)]
    section.error = "; ".join(problems)
    gflops = {dtype: stats(matmul[dtype], "gflops") for dtype in PRECISIONS}
    if not any(gflops.values()):
        return section
    section.tables.append(
        Table(
            ["Matrix multiply", "GFLOP/s (median of best per process)", "min", "max", "vs float32"],
            [
                [
                    f"{dtype} {size}x{size}, tf.linalg.matmul",
                    *((g.median, g.low, g.high) if g else (None, None, None)),
                    g.median / gflops["float32"].median if g and gflops["float32"] else None,
                ]
                for dtype, g in gflops.items()
            ],
        )
    )
    rows: list[list[Any]] = []
    bounds: dict[str, dict[str, float]] = {dtype: {} for dtype in ctx.results["matmul_gflops"]}
    for model, runs in flops_runs.items():
        if errors(runs):
            continue
        figures = runs[0]
        for dtype, rate in ctx.results["matmul_gflops"].items():
            bounds[dtype][model] = rate * 1e3 / figures["train_mflop"]
        rows.append(
            [
                model,
                figures["parameters"],
                figures["forward_mflop"],
                figures["profiler_forward_mflop"],
                figures["train_mflop"],
                *(bounds.get(dtype, {}).get(model) for dtype in PRECISIONS),
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
                *(f"Best possible images/s, {dtype}" for dtype in PRECISIONS),
            ],
            rows,
        )
    )
    ctx.results["bound_images_per_second"] = bounds
    kind, bf16 = cpu_kind(), bf16_hardware()
    section.notes = [
        f"CPU: {cpu_description()}; a full run's report goes to reports/{kind}/; bfloat16 matrix "
        f"instructions (AMX-BF16 or AVX512-BF16): {'yes' if bf16 else 'no'}.",
        "Trained FLOP = forward + weight gradients + input gradients of every weighted layer but the first, "
        "counted from the layer shapes (convolutions and dense layers only). The TF profiler's forward count "
        "adds bias adds and activations and so runs a little higher.",
        "Best possible images/s = matmul GFLOP/s / trained FLOP per image: what a step would reach if every "
        "FLOP ran at the speed of one large matrix multiply, in float32 or in bfloat16. Training figures "
        "below are given as a fraction of the bound of the precision they computed in.",
    ]
    return section
