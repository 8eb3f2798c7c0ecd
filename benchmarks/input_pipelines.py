"""Section 2, training input pipelines: is the project's tf.data pipeline hidden behind the training step?

a = the tutorial's ImageDataGenerator, b = the project's pipeline, c = the model alone on in-memory batches.
c does not read files, so one c measurement per model serves both data variants.
"""

from __future__ import annotations

from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Job, errors, run_alternating, run_job, stats
from benchmarks.report import Section, Table, Target
from benchmarks.tf_profile import describe

PIPELINES = {
    "legacy": "a. ImageDataGenerator (tutorial)",
    "project": "b. project tf.data",
    "memory": "c. model alone",
}
TARGET_B_OVER_C = 0.95
TARGET_FRACTION_OF_BOUND = 0.6


def jobs_for(ctx: Context, model: str) -> list[Job]:
    jobs = []
    for variant, path in ctx.data.variants().items():
        for pipeline in ("legacy", "project"):
            params = {"pipeline": pipeline, "model": model, "data_dir": str(path)}
            jobs.append(Job(f"{model}/{variant}/{pipeline}", "train_speed", params))
    params = {"pipeline": "memory", "model": model, "data_dir": str(ctx.data.small)}
    jobs.append(Job(f"{model}/memory", "train_speed", params))
    return jobs


def run(ctx: Context) -> Section:
    section = Section("pipelines", "Training input pipelines (batch 32, same model, same augmentation)")
    models = ("tutorial",) if ctx.quick else ("tutorial", "compact")
    jobs = [job for model in models for job in jobs_for(ctx, model)]
    results = run_alternating(jobs, ctx.repeats, ctx.log)
    section.raw = {"runs": results}
    section.error = "; ".join(e for runs in results.values() for e in errors(runs))
    speed_rows, ratio_rows = [], []
    for model in models:
        memory = stats(results[f"{model}/memory"], "images_per_second")
        bound = ctx.bound(model)
        speed_rows.append(speed_row(model, "any", "memory", results[f"{model}/memory"], bound))
        for variant in ctx.data.variants():
            runs = {p: results[f"{model}/{variant}/{p}"] for p in ("legacy", "project")}
            speed_rows.extend(speed_row(model, variant, p, runs[p], bound) for p in runs)
            legacy, project = (stats(runs[p], "images_per_second") for p in ("legacy", "project"))
            b_over_c = ratio(project, memory)
            ratio_rows.append([model, variant, b_over_c, ratio(project, legacy), ratio(legacy, memory)])
            target = Target(f"b/c {model}, {variant} images", b_over_c, TARGET_B_OVER_C)
            if target.met is False:
                target.why = explain_input_gap(runs["project"], results[f"{model}/memory"])
            section.targets.append(target)
    section.tables.append(
        Table(
            [
                "Model",
                "Data",
                "Pipeline",
                "Images/s",
                "min",
                "max",
                "Fraction of bound",
                "First epoch s",
                "CPU ms/image",
                "Input alone images/s",
                "Peak RSS MB",
            ],
            speed_rows,
            "Steady-state images/s over the second epoch; epoch 1 includes listing or decoding files.",
        )
    )
    section.tables.append(
        Table(["Model", "Data", "b/c", "b/a", "a/c"], ratio_rows, "Ratios of median images/s.")
    )
    tutorial_step = stats(results["tutorial/memory"], "images_per_second")
    bound = ctx.bound("tutorial")
    fraction = tutorial_step.median / bound if tutorial_step and bound else None
    step_target = Target(
        "default training step / hardware bound, tutorial", fraction, TARGET_FRACTION_OF_BOUND
    )
    section.targets.append(step_target)
    if step_target.met is False:
        profiled = run_job(
            Job(
                "tutorial/memory/profile",
                "train_speed",
                {
                    "pipeline": "memory",
                    "model": "tutorial",
                    "data_dir": str(ctx.data.small),
                    "warmup_steps": 3,
                    "tf_profile_steps": 5 if ctx.quick else 20,
                },
            )
        )
        section.raw["step_profile"] = profiled
        step_target.why = explain_step(profiled, ctx)
    ctx.results["pipelines"] = results
    section.notes = [
        "a is the tutorial's code path as written: Keras fits its DirectoryIterator with one worker, "
        "decoding, resizing (nearest neighbour) and warping every image again in every epoch.",
        "b decodes each file once (cached), then shuffles, augments and prefetches in tf.data.",
        "c feeds the same model pre-batched float tensors cached in memory: the best any pipeline can do.",
        "b and c compile the model as training does (Adam in one fused kernel, `performance.fused_adam`); a "
        "keeps the tutorial's Keras Adam, so b/a includes that gain and b/c compares like with like.",
        "CPU ms/image is the process's CPU time over the measured epoch: on 2 cores, what the input pipeline "
        "spends is taken from the training step. Input alone = one epoch of the pipeline without the model.",
    ]
    return section


def speed_row(
    model: str, variant: str, pipeline: str, runs: list[dict[str, Any]], bound: float | None
) -> list:
    speed = stats(runs, "images_per_second")
    figures = [
        stats(runs, name)
        for name in ("first_epoch_seconds", "cpu_ms_per_image", "input_images_per_second", "peak_rss_mb")
    ]
    return [
        model,
        variant,
        PIPELINES[pipeline],
        speed.median if speed else None,
        speed.low if speed else None,
        speed.high if speed else None,
        speed.median / bound if speed and bound else None,
        *(figure.median if figure else None for figure in figures),
    ]


def ratio(numerator, denominator) -> float | None:
    return numerator.median / denominator.median if numerator and denominator else None


def explain_input_gap(project: list[dict[str, Any]], memory: list[dict[str, Any]]) -> str:
    """Why b is slower than c, from CPU time measured in both runs and in the pipeline alone."""
    b_cpu, c_cpu = stats(project, "cpu_ms_per_image"), stats(memory, "cpu_ms_per_image")
    alone = stats(project, "input_cpu_ms_per_image")
    if not (b_cpu and c_cpu and alone):
        return "not enough successful runs to explain."
    return (
        f"the step costs {c_cpu.median:.2f} CPU ms/image alone and {b_cpu.median:.2f} with the pipeline; the "
        f"pipeline by itself costs {alone.median:.2f} CPU ms/image (decode is cached, so this is shuffling, "
        "augmentation and batching). On 2 cores the pipeline's CPU time is taken from the step, predicting "
        f"b/c about {c_cpu.median / (c_cpu.median + alone.median):.2f}."
    )


def explain_step(profiled: dict[str, Any], ctx: Context) -> str:
    if "error" in profiled or "op_time" not in profiled:
        return f"profiling failed: {profiled.get('error', 'no op times')}"
    gflops = ctx.gflops()
    return (
        f"TF profiler over {profiled['op_time']['steps']} steps "
        f"({profiled['op_time']['wall_ms_per_step']:.0f} ms/step, matmul bound "
        f"{'?' if not gflops else f'{gflops:.0f} GFLOP/s'}): {describe(profiled['op_time'])}."
    )
