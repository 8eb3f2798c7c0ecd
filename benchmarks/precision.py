"""Section 7, precision: each recipe's network at its own image size in float32, in mixed bfloat16 and with
`precision="auto"` (what `training.precision.resolve_precision` picks), side by side in fresh processes.

Why per recipe: which precision is faster depends on the CPU, the network and the image size (on a Xeon with
AMX-BF16, bfloat16 trained the tutorial network 1.65x faster at 64 px but `compact` 0.67x as fast), so `auto`
must be judged on every network a user gets. A figure is steady-state images/s over a few dozen steps on
batches already in memory (the "model alone" figure of the pipelines section), against the hardware bound of
the precision it computed in. `quick` trains only a head on frozen features: its time goes into the frozen
network's pass over the images, so that pass is what it measures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Job, Stats, errors, run_alternating, run_job, stats
from benchmarks.report import Section, Table, Target
from benchmarks.tf_profile import describe

# Recipe -> what its time goes into: training the whole network, or the frozen network's feature pass.
CASES = {"tutorial": "training", "studio": "training", "pretrained": "training", "quick": "feature pass"}
QUICK_CASES = ("tutorial",)  # a smoke run: the quickest network (tests cover the feature pass)
VARIANTS = ("float32", "bfloat16", "auto")
WARMUP_STEPS = 5
STEPS = 60
QUICK_STEPS = (1, 3)  # (warm-up, measured) in a smoke run
MIN_REPEATS = 2
PROFILE_STEPS = 4  # profiled training steps per precision when bfloat16 trained a network slower
GOAL_BF16_CPU = (
    1.5  # issue 14: on a CPU with bfloat16 matrix hardware, auto trains every recipe >= 1.5x faster
)
GOAL_FLOAT32_CPU = 0.95  # elsewhere nothing gets slower (5%: run-to-run noise of a shared machine)


def measure_precision_speed(
    recipe_name: str, precision: str, data_dir: str, warmup_steps: int, steps: int
) -> dict[str, Any]:
    """Images/s of recipe `recipe_name`'s network at its image size and batch in `precision` ("auto" is
    resolved first, as training resolves it, timed: the first resolution on a CPU runs the probe)."""
    from simpsons_core.config import recipe
    from simpsons_core.training.precision import resolve_precision

    config = recipe(recipe_name).replace(data_dir=data_dir, precision=precision)
    started = time.perf_counter()
    resolved = resolve_precision(config)  # a run's length unknown: probe unless cached, as a long run does
    resolve_seconds, chosen = time.perf_counter() - started, resolved.precision
    if CASES[recipe_name] == "feature pass":
        result = measure_feature_speed(
            config.model, data_dir, config.image_size, chosen, config.batch_size, warmup_steps, steps
        )
    else:
        from benchmarks.train_step import measure_training_speed

        levers = {"precision": chosen, "batch_size": config.batch_size}
        result = measure_training_speed(
            "memory", config.model, data_dir, warmup_steps, config.image_size, levers, steps=steps
        )
    return {**result, "precision": chosen, "reason": resolved.reason, "resolve_seconds": resolve_seconds}


def measure_feature_speed(
    model: str,
    data_dir: str,
    image_size: int,
    precision: str,
    batch_size: int,
    warmup_steps: int,
    steps: int,
) -> dict[str, Any]:
    """Images/s of a frozen network's feature pass (everything before its head) on in-memory batches, called
    as `frozen_features.precompute` calls it; `mflop` is the pass's forward MFLOP per image."""
    from pathlib import Path

    import numpy as np

    from benchmarks.train_step import Levers, cpu_seconds, project_or_memory_dataset

    settings = Levers(precision=precision, batch_size=batch_size)
    settings.apply_globally()
    import keras

    from benchmarks.flops import forward_flops
    from simpsons_core.training.frozen_features import HEAD_INPUT
    from simpsons_core.training.models import build_model

    dataset, _, classes, _ = project_or_memory_dataset("memory", Path(data_dir), image_size, settings)
    net = build_model(model, image_size, classes)
    body = keras.Model(net.inputs, net.get_layer(HEAD_INPUT).input)
    batches = iter(dataset)
    for _ in range(warmup_steps):
        np.asarray(body(next(batches)[0], training=False))
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for _ in range(steps):
        np.asarray(body(next(batches)[0], training=False))
    seconds, images = time.perf_counter() - started, steps * batch_size
    return {
        "images_per_second": images / seconds,
        "cpu_ms_per_image": 1000 * (cpu_seconds() - cpu_started) / images,
        "forward_mflop": forward_flops(body) / 1e6,
    }


def run(ctx: Context) -> Section:
    from benchmarks.hardware import measure_bounds
    from simpsons_core.cpu import bf16_hardware

    section = Section("precision", "Precision per recipe: float32, bfloat16 and auto")
    if ctx.gflops() is None:  # run without the hardware section: measure the bounds here
        section.raw["matmul"] = measure_bounds(ctx)
    warmup, steps = QUICK_STEPS if ctx.quick else (WARMUP_STEPS, STEPS)
    repeats = ctx.repeats if ctx.quick else max(MIN_REPEATS, ctx.repeats)
    # One workspace for the section, as a user has one: Lite0's weights are converted once, and auto's probe
    # runs in the first auto job and is then read from its cache.
    home = {"SIMPSONS_HOME": str(ctx.workdir / "precision-home")}
    cases = QUICK_CASES if ctx.quick else tuple(CASES)
    results: dict[str, list[dict[str, Any]]] = {}
    for case in cases:  # a case's variants run side by side, so drift between cases spoils no ratio
        params = {
            "recipe_name": case,
            "data_dir": str(ctx.data.small),
            "warmup_steps": warmup,
            "steps": steps,
        }
        jobs = [Job(f"{case}/{p}", "precision_speed", {**params, "precision": p}, home) for p in VARIANTS]
        results |= run_alternating(jobs, repeats, ctx.log)
    section.raw["runs"] = results
    section.error = "; ".join(e for runs in results.values() for e in errors(runs))
    bf16 = bf16_hardware()
    goal = GOAL_BF16_CPU if bf16 else GOAL_FLOAT32_CPU
    rows = []
    for case in cases:
        row, target, bf16_ratio = case_figures(
            ctx, case, {p: results[f"{case}/{p}"] for p in VARIANTS}, goal, bf16
        )
        rows.append(row)
        section.targets.append(target)
        if target.met is False and CASES[case] == "training" and bf16_ratio and bf16_ratio < 1:
            profile_slow_bfloat16(ctx, case, home, section)
    section.tables.append(
        Table(
            [
                "Recipe",
                "Network, size",
                "Measures",
                *(f"{p} images/s" for p in VARIANTS),
                "auto chose",
                "bf16/float32",
                "auto/float32",
                "bf16/float32 by CPU time",
                "auto/float32 by CPU time",
                *(f"{p} fraction of bound" for p in VARIANTS),
            ],
            rows,
            f"Median of {repeats} fresh-process run(s) per variant, alternated; images/s over {steps} steps "
            f"of the recipe's batch after {warmup} warm-up steps, on in-memory batches.",
        )
    )
    probes = [r["resolve_seconds"] for case in cases for r in results[f"{case}/auto"] if "error" not in r]
    section.notes = [
        "float32 and bfloat16 are forced; auto is what a run with the default `--precision auto` trains in "
        f"(`resolve_precision`). Goal auto/float32 >= {goal} x: this CPU "
        + (
            "has bfloat16 matrix hardware."
            if bf16
            else "has no bfloat16 matrix hardware, so nothing may get slower."
        ),
        "By CPU time: float32's CPU ms per image over the variant's, which other jobs on a shared machine "
        "disturb less than images/s (auto and bfloat16 compute the same when auto chose bfloat16: their "
        "difference in images/s is the run-to-run noise).",
        "bfloat16 is Keras' mixed_bfloat16 policy: bfloat16 compute, float32 weights and softmax. Fraction "
        "of bound: images/s over the bound of the precision the variant computed in (matmul GFLOP/s of that "
        "precision / the network's trained MFLOP per image; forward MFLOP for a feature pass).",
        f"Resolving auto took {max(probes, default=0):.1f} s at most (the first resolution of a network and "
        "size on this CPU runs the timed probe; later ones read its cache).",
    ]
    return section


def case_figures(
    ctx: Context, case: str, runs: dict[str, list[dict[str, Any]]], goal: float, bf16: bool
) -> tuple[list[Any], Target, float | None]:
    """One recipe's table row, its auto/float32 target and its bfloat16/float32 ratio."""
    from simpsons_core.config import recipe

    config = recipe(case)
    speed = {p: stats(runs[p], "images_per_second") for p in VARIANTS}
    cost = {p: stats(runs[p], "cpu_ms_per_image") for p in VARIANTS}
    chosen = choices(runs["auto"])
    bf16_ratio, auto_ratio = (
        ratio(speed["bfloat16"], speed["float32"]),
        ratio(speed["auto"], speed["float32"]),
    )
    row = [
        case,
        f"{config.model}, {config.image_size} px",
        CASES[case],
        *(speed[p].median if speed[p] else None for p in VARIANTS),
        chosen,
        bf16_ratio,
        auto_ratio,
        ratio(cost["float32"], cost["bfloat16"]),
        ratio(cost["float32"], cost["auto"]),
        *(fraction_of_bound(ctx, runs[p], speed[p]) for p in VARIANTS),
    ]
    target = Target(f"auto/float32, {case} ({CASES[case]})", auto_ratio, goal, "x")
    if target.met is False:
        target.why = explain_miss(chosen, bf16_ratio, bf16)
    return row, target, bf16_ratio


def profile_slow_bfloat16(ctx: Context, case: str, home: dict[str, str], section: Section) -> None:
    """Where a training step's time goes in each precision (TensorFlow profiler, a few steps each), when
    bfloat16 trained this recipe's network slower than float32: the section's profile and the target's why."""
    from simpsons_core.config import recipe

    config = recipe(case)
    lines = []
    for precision in ("float32", "bfloat16"):
        params = {
            "pipeline": "memory",
            "model": config.model,
            "data_dir": str(ctx.data.small),
            "warmup_steps": 2,
            "image_size": config.image_size,
            "levers": {"precision": precision, "batch_size": config.batch_size},
            "steps": 2,
            "tf_profile_steps": PROFILE_STEPS,
        }
        result = run_job(Job(f"{case}/{precision}/profile", "train_speed", params, home))
        section.raw[f"{case}/{precision}/profile"] = result
        if "error" in result or "op_time" not in result:
            lines.append(f"{precision}: profiling failed: {result.get('error', 'no op times')}")
            continue
        op_time = result["op_time"]
        lines.append(f"{precision}: {op_time['wall_ms_per_step']:.0f} ms a step; {describe(op_time)}")
    section.profiles[
        f"TF profiler: {case} ({config.model}, {config.image_size} px), {PROFILE_STEPS} steps"
    ] = "\n".join(lines)
    target = next(t for t in section.targets if t.name.startswith(f"auto/float32, {case} "))
    target.why += f" TF profiler, {PROFILE_STEPS} steps each: " + " | ".join(lines)


def ratio(numerator: Stats | None, denominator: Stats | None) -> float | None:
    return numerator.median / denominator.median if numerator and denominator else None


def choices(runs: Sequence[dict[str, Any]]) -> str:
    """What auto resolved to over the repeats: "bfloat16", or "float32 (1), bfloat16 (1)" when it varied."""
    chosen = [r["precision"] for r in runs if "error" not in r]
    counts = {p: chosen.count(p) for p in dict.fromkeys(chosen)}
    if len(counts) == 1:
        return chosen[0]
    return ", ".join(f"{p} ({n})" for p, n in counts.items()) or "—"


def fraction_of_bound(ctx: Context, runs: Sequence[dict[str, Any]], speed: Stats | None) -> float | None:
    """Median images/s over the bound of the precision the runs computed in (auto's: the one it chose)."""
    good = [r for r in runs if "error" not in r]
    if not good or not speed:
        return None
    gflops = ctx.gflops(good[0]["precision"])
    mflop = good[0].get("train_mflop") or good[0].get("forward_mflop")
    return speed.median / (gflops * 1e3 / mflop) if gflops and mflop else None


def explain_miss(chosen: str, bf16_ratio: float | None, bf16: bool) -> str:
    """Why auto/float32 fell short, from the measured bfloat16/float32 ratio and what auto chose."""
    measured = "not measured" if bf16_ratio is None else f"{bf16_ratio:.2f}x float32"
    if not bf16:
        return f"auto chose {chosen} on a CPU without bfloat16 hardware (bfloat16 here: {measured})."
    if chosen == "float32":
        return f"bfloat16 ran at {measured} for this network and size, so auto kept float32."
    return f"auto chose {chosen}, which ran at {measured}: bfloat16 gains less here on this network and size."
