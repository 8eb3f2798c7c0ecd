"""Section 6, what a user waits after Start: from `start_run` to the first progress line in metrics.jsonl.

The caller has its modules imported already (as the dashboard has); the training child starts from nothing:
Python, TensorFlow, finding and splitting the images, decoding them, building the model and its first step.
The phases the child reports in status.json are timed too: they say where the wait goes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Job, brief, errors, run_job, stats
from benchmarks.report import Section, Table, Target
from benchmarks.startup_profile import describe, profile_training_start

TARGET_SECONDS = 10.0
POLL_SECONDS = 0.02


def measure_first_progress(data_dir: str, timeout: float = 120.0) -> dict[str, Any]:
    """Start a run with the default recipe on `data_dir`, wait for its first metrics line, then cancel it."""
    from simpsons_core.config import DEFAULT_RECIPE, recipe
    from simpsons_core.run import launcher, lookup
    from simpsons_core.run.folder import METRICS_FILE, STATUS_FILE

    started = time.perf_counter()
    run_id = launcher.start_run(recipe(DEFAULT_RECIPE).replace(data_dir=data_dir))
    returned = time.perf_counter() - started
    folder = lookup.run_dir(run_id)
    phases: dict[str, float] = {}
    first_line = None
    while first_line is None and time.perf_counter() - started < timeout:
        phase = _read_json(folder / STATUS_FILE).get("phase")
        if phase and phase not in phases:
            phases[phase] = time.perf_counter() - started
        metrics = folder / METRICS_FILE
        if metrics.exists() and metrics.read_text().strip():
            first_line = time.perf_counter() - started
        time.sleep(POLL_SECONDS)
    launcher.cancel_run(run_id)
    while lookup.read_run(run_id).state == "running" and time.perf_counter() - started < timeout + 60:
        time.sleep(0.2)
    if first_line is None:
        state = lookup.read_run(run_id).state
        raise RuntimeError(f"no metrics line within {timeout:.0f} s; run state {state}")
    return {"start_run_seconds": returned, "first_line_seconds": first_line, "phases": phases}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run(ctx: Context) -> Section:
    section = Section("first_progress", "From Start to the first progress line (default recipe)")
    # (case, data, workspace): the second start reuses the first one's workspace, so its scan cache is warm.
    cases = [
        ("small images, fresh workspace", ctx.data.small, "small"),
        ("small images, second start", ctx.data.small, "small"),
        ("realistic images, fresh workspace", ctx.data.realistic, "realistic"),
    ]
    results: dict[str, list[dict[str, Any]]] = {case: [] for case, _, _ in cases}
    for repeat in range(ctx.repeats):
        for case, data, workspace in cases:
            home = {"SIMPSONS_HOME": str(ctx.workdir / f"progress-{workspace}-{repeat}")}
            result = run_job(Job(case, "first_progress", {"data_dir": str(data)}, home))
            results[case].append(result)
            ctx.log(f"  [{repeat + 1}/{ctx.repeats}] {case}: {brief(result)}")
    section.raw = results
    section.error = "; ".join(e for runs in results.values() for e in errors(runs))
    rows = []
    for case, runs in results.items():
        first, call = stats(runs, "first_line_seconds"), stats(runs, "start_run_seconds")
        rows.append(
            [case, call.median if call else None, first.median if first else None, phase_summary(runs)]
        )
    section.tables.append(
        Table(["Case", "start_run returns s", "First progress line s", "Seconds per phase (median)"], rows)
    )
    for case in results:
        first = stats(results[case], "first_line_seconds")
        target = Target(
            f"first progress line, {case}", first.median if first else None, TARGET_SECONDS, "s", False
        )
        if target.met is False:
            target.why = (
                f"seconds per phase of the child, from status.json: {phase_summary(results[case])}; "
                "the py-spy profile below splits a training process's start by stage."
            )
        section.targets.append(target)
    if any(target.met is False for target in section.targets):
        profile = profile_training_start(str(ctx.data.small))
        section.raw["startup_profile"] = profile
        title = "py-spy: a fresh `train` process, 1 epoch on the small images, main thread by stage (wall s)"
        section.profiles[title] = describe(profile)
    section.notes = [
        "Default recipe (compact model, 20% leak-free validation split, which needs the scan's perceptual "
        "hashes); a fresh workspace has no scan cache, the second start reuses it. The first progress line "
        'is written after the first training batch. Phases are the child\'s own (status.json); "starting" '
        "lasts from start_run until the child, having imported TensorFlow, reports its first phase, and "
        '"training" until the first line (model build, tracing, the first batch).',
    ]
    return section


def phase_summary(runs: list[dict[str, Any]]) -> str:
    """How long each phase of the child lasted (median over the successful runs), up to the first line.

    The first phase, "starting", is written by `start_run` itself, so it covers the child's interpreter start
    and imports until the child reports its own first phase."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return "—"
    names = list(good[0]["phases"])
    spans = []
    for index, name in enumerate(names):
        durations = [
            {
                "s": (r["phases"][names[index + 1]] if index + 1 < len(names) else r["first_line_seconds"])
                - r["phases"][name]
            }
            for r in good
            if all(n in r["phases"] for n in names[index : index + 2])
        ]
        duration = stats(durations, "s")
        spans.append(f"{name} {duration.median:.1f}" if duration else f"{name} ?")
    return ", ".join(spans)
