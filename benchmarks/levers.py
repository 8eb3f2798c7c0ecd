"""Section 3, compute levers: each setting against Keras defaults on the model alone (c), then on the
project pipeline (b) for the defaults, the winners and tf.data's threading; then a 10-epoch accuracy check of
the winners and of every lever that changes the arithmetic (bfloat16, batch size), winner or not."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Job, Stats, errors, run_alternating, stats
from benchmarks.report import Section, Table

MODEL = "tutorial"
DEFAULT = "Keras defaults"
LEVERS: dict[str, dict[str, Any]] = {
    DEFAULT: {},
    "XLA (jit_compile=True)": {"jit_compile": True},
    "bfloat16 (mixed_bfloat16)": {"precision": "bfloat16"},
    "batch 64": {"batch_size": 64},
    "batch 128": {"batch_size": 128},
    "threads intra 2 / inter 1": {"intra_threads": 2, "inter_threads": 1},
    "fused Adam (performance.fused_adam)": {"optimizer": "fused_adam"},
    "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)": {"onednn": False},
}
INPUT_LEVERS: dict[str, dict[str, Any]] = {"tf.data private pool of 1 thread": {"tfdata_threads": 1}}
# Every row starts from Keras' own Adam, not from the training default (which is the fused one), so that each
# lever is compared with Keras untouched.
KERAS_ADAM = {"optimizer": "adam"}
QUICK_LEVERS = (DEFAULT, "XLA (jit_compile=True)", "batch 64")
# Levers that change what is computed, not only how fast: their accuracy is checked whether they win or not.
CHANGES_THE_MATHS = ("bfloat16 (mixed_bfloat16)", "batch 64", "batch 128")
WIN_MARGIN = 1.05  # a lever "wins" when it is at least 5% faster than the defaults on the model alone
ACCURACY_EPOCHS = 10
WARMUP_STEPS = 5


def speed_jobs(ctx: Context, pipeline: str, levers: dict[str, dict[str, Any]]) -> list[Job]:
    params = {"pipeline": pipeline, "model": MODEL, "data_dir": str(ctx.data.small)}
    warmup = 1 if ctx.quick else WARMUP_STEPS
    return [
        Job(
            f"{pipeline}/{name}",
            "train_speed",
            {**params, "warmup_steps": warmup, "levers": {**KERAS_ADAM, **settings}},
        )
        for name, settings in levers.items()
    ]


def run(ctx: Context) -> Section:
    section = Section("levers", f"Compute levers vs Keras defaults ({MODEL}, small images)")
    levers = {name: s for name, s in LEVERS.items() if not ctx.quick or name in QUICK_LEVERS}
    memory = run_alternating(speed_jobs(ctx, "memory", levers), ctx.repeats, ctx.log)
    speed = {name: stats(memory[f"memory/{name}"], "images_per_second") for name in levers}
    winners = [
        name
        for name, s in speed.items()
        if name != DEFAULT and s and speed[DEFAULT] and s.median >= WIN_MARGIN * speed[DEFAULT].median
    ]
    on_project = {name: levers[name] for name in (DEFAULT, *winners)} | INPUT_LEVERS
    project = run_alternating(speed_jobs(ctx, "project", on_project), ctx.repeats, ctx.log)
    section.raw = {"speed": memory | project}
    section.error = "; ".join(e for runs in section.raw["speed"].values() for e in errors(runs))
    project_speed = {name: stats(project[f"project/{name}"], "images_per_second") for name in on_project}
    rows = [
        [
            name,
            *figures(speed.get(name), speed[DEFAULT]),
            fraction(speed.get(name), ctx.bound(MODEL, LEVERS.get(name, {}).get("precision", "float32"))),
            *figures(project_speed.get(name), project_speed[DEFAULT]),
        ]
        for name in {**levers, **INPUT_LEVERS}
    ]
    section.tables.append(
        Table(
            ["Lever", "c images/s", "c vs default", "c fraction of bound", "b images/s", "b vs default"],
            rows,
            f"Median of {ctx.repeats} fresh-process runs each, one full epoch after {WARMUP_STEPS} warm-up "
            f"steps; a lever wins at >= {WIN_MARGIN:.2f}x the default on c and is then measured on b. "
            "Fraction of bound: against the bound of the precision the lever computes in.",
        )
    )
    checked = [name for name in levers if name in winners or name in CHANGES_THE_MATHS]
    section.tables.append(accuracy_check(ctx, checked, section))
    ctx.results["lever_winners"] = winners
    section.notes = [
        "Defaults: Keras' Adam, jit_compile='auto' (no XLA on CPU), float32, batch 32, TensorFlow's own "
        "thread counts (one per core for both pools), tf.data sharing TensorFlow's pool.",
        f"Accuracy check: {1 if ctx.quick else ACCURACY_EPOCHS} epochs on the training folder with a 20% "
        "leak-free validation split, augmentation on, as a user trains; noise = 2 x the binomial standard "
        "error of the difference between two accuracies on that many validation images.",
    ]
    return section


def figures(value: Stats | None, default: Stats | None) -> list[float | None]:
    if not value:
        return [None, None]
    return [value.median, value.median / default.median if default else None]


def fraction(value: Stats | None, bound: float | None) -> float | None:
    return value.median / bound if value and bound else None


def accuracy_check(ctx: Context, checked: list[str], section: Section) -> Table:
    """Validation accuracy after training with the defaults and with each `checked` lever, same seed."""
    epochs = 1 if ctx.quick else ACCURACY_EPOCHS
    names = [DEFAULT, *checked]
    params = {"model": MODEL, "data_dir": str(ctx.data.small), "epochs": epochs}
    levers = {name: {**KERAS_ADAM, **LEVERS[name]} for name in names}
    jobs = [Job(name, "train_accuracy", {**params, "levers": levers[name]}) for name in names]
    results = run_alternating(jobs, 1, ctx.log, timeout=1800)
    section.raw["accuracy"] = results
    problems = [e for runs in results.values() for e in errors(runs)]
    section.error = "; ".join(filter(None, [section.error, *problems]))
    default = stats(results[DEFAULT], "val_accuracy")
    rows = []
    for name in names:
        accuracy = stats(results[name], "val_accuracy")
        count = stats(results[name], "validation_images")
        noise = binomial_noise(default.median, count.median) if default and count else None
        delta = accuracy.median - default.median if accuracy and default else None
        rows.append([name, accuracy.median if accuracy else None, delta, noise, verdict(name, delta, noise)])
    caption = (
        f"Validation accuracy after {epochs} epoch(s) ({MODEL}), same seed; kept if within noise or better."
    )
    return Table(["Setting", "Validation accuracy", "Change", "Noise (2 SE)", "Verdict"], rows, caption)


def verdict(name: str, delta: float | None, noise: float | None) -> str:
    if name == DEFAULT or delta is None or noise is None:
        return "—"
    if abs(delta) <= noise:
        return "within noise"
    return "better" if delta > 0 else "worse"


def binomial_noise(accuracy: float, images: float) -> float:
    """Two standard errors of the difference of two accuracies measured on `images` images each."""
    return 2 * math.sqrt(2 * accuracy * (1 - accuracy) / images)
