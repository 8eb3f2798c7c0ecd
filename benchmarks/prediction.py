"""Section 4, prediction: cold model load, single-image latency through the dashboard's path (`Predictor`)
against `model.predict` on one image, batch throughput, and the same for the TFLite export."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.context import Context
from benchmarks.datasets import image_files
from benchmarks.harness import Job, errors, run_alternating, run_job, stats
from benchmarks.profiling import profiled
from benchmarks.report import Section, Table, Target

MODEL = "tutorial"
TARGET_SPEEDUP = 10.0


def make_run(data_dir: str, model: str = MODEL) -> dict[str, Any]:
    """Train one epoch as a user would (validation on the test split) and export it to TFLite."""
    from simpsons_core import paths
    from simpsons_core.config import recipe
    from simpsons_core.inference.export import export_run
    from simpsons_core.training.trainer import train_in_foreground

    config = recipe("tutorial").replace(data_dir=data_dir, model=model, epochs=1)
    info = train_in_foreground(config, paths.runs_dir() / f"bench-{model}")
    if info.state != "completed":
        raise RuntimeError(f"the benchmark's training run ended {info.state}: {info.error}")
    tflite = export_run(info.path, "tflite")
    return {
        "run_dir": str(info.path),
        "tflite": str(tflite.path),
        "tflite_top1_agreement": tflite.top1_agreement,
    }


def measure_cold_load(run_dir: str, image: str) -> dict[str, Any]:
    """A fresh process's road to its first answer: import TensorFlow, load the run, predict one image."""
    started = time.perf_counter()
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    imported = time.perf_counter()
    from simpsons_core.inference.predict import Predictor

    predictor = Predictor.from_run(run_dir)
    loaded = time.perf_counter()
    predictor.predict([image])
    answered = time.perf_counter()
    return {
        "import_seconds": imported - started,
        "load_seconds": loaded - imported,
        "first_prediction_seconds": answered - loaded,
        "to_first_answer_seconds": answered - started,
    }


def measure_latency(
    run_dir: str, tflite: str, images_dir: str, calls: int = 100, batch: int = 64, profile: bool = False
) -> dict[str, Any]:
    """Per-call latency of the three single-image paths, interleaved call by call so that drift hits all
    alike, then batch throughput of each. With `profile`, instead the cProfile of `calls` Predictor calls."""
    from simpsons_core.data.pipeline import prepare_for_model
    from simpsons_core.inference.export import load_export
    from simpsons_core.inference.predict import Predictor

    files = [Path(images_dir) / f for f in image_files(Path(images_dir)) if f.parts[0] == "simpson_testset"]
    uploads = [f.read_bytes() for f in files]  # what the dashboard gets from an upload
    predictor = Predictor.from_run(run_dir)
    inputs = np.asarray(prepare_for_model(np.stack([predictor.load(u) for u in uploads]), predictor.augment))
    if profile:
        predictor.predict([uploads[0]])
        return {
            "profile": profiled(
                lambda: [predictor.predict([uploads[i % len(uploads)]]) for i in range(calls)]
            )
        }
    tflite_run = load_export("tflite", Path(tflite))
    paths: dict[str, Any] = {
        "predictor": lambda i: predictor.predict([uploads[i]]),
        "model.predict": lambda i: predictor.model.predict(inputs[i : i + 1], verbose=0),
        "tflite": lambda i: tflite_run(inputs[i : i + 1]),
    }
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    for name in paths:
        paths[name](0)  # warm up: traces, allocations
    for call in range(calls):
        for name, run in paths.items():
            started = time.perf_counter()
            run(call % len(uploads))
            latencies[name].append(1000 * (time.perf_counter() - started))
    result: dict[str, Any] = {}
    for name, values in latencies.items():
        result[f"{name}_p50_ms"] = float(np.percentile(values, 50))
        result[f"{name}_p95_ms"] = float(np.percentile(values, 95))
    throughputs = {
        "predictor": lambda: predictor.predict(uploads),
        "model.predict": lambda: predictor.model.predict(inputs, batch_size=batch, verbose=0),
        "tflite": lambda: [tflite_run(inputs[s : s + batch]) for s in range(0, len(inputs), batch)],
    }
    for name, run in throughputs.items():
        run()
        started = time.perf_counter()
        run()
        result[f"{name}_batch_images_per_second"] = len(uploads) / (time.perf_counter() - started)
    result["images"] = len(uploads)
    return result


def run(ctx: Context) -> Section:
    section = Section("prediction", f"Prediction ({MODEL} model, test images)")
    home = {"SIMPSONS_HOME": str(ctx.workdir / "prediction-home")}
    made = run_job(Job("make_run", "make_run", {"data_dir": str(ctx.data.small)}, home), timeout=1800)
    section.raw["make_run"] = made
    if "error" in made:
        section.error = made["error"]
        return section
    image = str(ctx.data.small / image_files(ctx.data.small)[-1])
    calls = 20 if ctx.quick else 100
    jobs = [
        Job("cold", "cold_load", {"run_dir": made["run_dir"], "image": image}, home),
        Job(
            "latency",
            "latency",
            {
                "run_dir": made["run_dir"],
                "tflite": made["tflite"],
                "images_dir": str(ctx.data.small),
                "calls": calls,
            },
            home,
        ),
    ]
    results = run_alternating(jobs, ctx.repeats, ctx.log)
    section.raw.update(results)
    section.error = "; ".join(e for runs in results.values() for e in errors(runs))
    cold = {
        name: stats(results["cold"], name)
        for name in ("import_seconds", "load_seconds", "first_prediction_seconds", "to_first_answer_seconds")
    }
    section.tables.append(
        Table(
            [
                "Cold start (fresh process)",
                "Import TF + Keras s",
                "Predictor.from_run s",
                "First prediction s",
                "To first answer s",
            ],
            [["median", *(s.median if s else None for s in cold.values())]],
        )
    )
    latency = results["latency"]
    rows = []
    for name, label in (
        ("predictor", "Predictor.predict (upload bytes: decode + model)"),
        ("model.predict", "model.predict (pixels already prepared)"),
        ("tflite", "TFLite export (pixels already prepared)"),
    ):
        figures = [stats(latency, f"{name}_{k}") for k in ("p50_ms", "p95_ms", "batch_images_per_second")]
        rows.append([label, *(f.median if f else None for f in figures)])
    section.tables.append(
        Table(
            ["Path", "Single image p50 ms", "p95 ms", "Batch images/s"],
            rows,
            f"{calls} single-image calls per path, interleaved; batch: all test images at once, 64 per call.",
        )
    )
    for percentile in ("p50", "p95"):
        fast, slow = (
            stats(latency, f"predictor_{percentile}_ms"),
            stats(latency, f"model.predict_{percentile}_ms"),
        )
        speedup = slow.median / fast.median if fast and slow else None
        section.targets.append(
            Target(f"Predictor vs model.predict speed-up, {percentile}", speedup, TARGET_SPEEDUP, "x")
        )
    if any(t.met is False for t in section.targets):
        job = jobs[1]
        result = run_job(Job(job.key, job.task, {**job.params, "profile": True}, job.env))
        section.profiles[f"{calls} warm Predictor.predict calls (cProfile, cumulative)"] = result.get(
            "profile", result.get("error", "")
        )
        spread = {
            k: stats(latency, k) for k in ("predictor_p50_ms", "predictor_p95_ms", "model.predict_p95_ms")
        }
        figures = ", ".join(f"{k} {v.median:.1f}" for k, v in spread.items() if v)
        for target in section.targets:
            if target.met is False:
                target.why = (
                    f"{figures}; the cProfile below splits a warm Predictor call between decoding "
                    "(load_pixels) and the traced model call."
                )
    section.notes = [
        "Predictor is what the dashboard's Predict page calls: decode and resize with images.load_pixels, "
        "rescale, then one traced tf.function kept warm. model.predict is given pixels already prepared, so "
        "the comparison favours model.predict.",
        f"The model was trained 1 epoch (weights do not change the speed); its TFLite export agreed on "
        f"{made['tflite_top1_agreement']:.0%} of checked images. TFLite runs through export.load_export.",
    ]
    return section
