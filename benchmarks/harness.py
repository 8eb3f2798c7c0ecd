"""Run each measurement in a fresh process, variants in alternated order, and summarise the repeats."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Job:
    """One measurement: `task` (a name in `benchmarks.worker.TASKS`) called with `params` in a new process.

    Args:
        key: the label this measurement's results are filed under.
        task: the worker task to run.
        params: keyword arguments for the task (JSON-serialisable).
        env: extra environment variables for the process (e.g. a scan cache location).
    """

    key: str
    task: str
    params: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def run_job(job: Job, timeout: float = 900.0) -> dict[str, Any]:
    """Run one job in a fresh interpreter and return its result dict, or `{"error": ...}` if it failed.

    The worker adds `peak_rss_mb` (the process's own peak resident memory) and `process_seconds` (wall time
    from interpreter start to the result).
    """
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "benchmarks.worker", job.task, json.dumps(job.params), str(out)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0", **job.env}
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return {"error": f"{job.key}: no result within {timeout:.0f} s"}
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
            return {"error": f"{job.key}: exit code {done.returncode}: " + " | ".join(tail)}
        result = json.loads(out.read_text())
        result["launch_seconds"] = time.perf_counter() - started
        return result


def alternated(jobs: Sequence[Job], repeat: int) -> list[Job]:
    """Forward order on even repeats, reversed on odd ones, so drift and warm-up favour no variant."""
    return list(jobs) if repeat % 2 == 0 else list(reversed(jobs))


def run_alternating(
    jobs: Sequence[Job], repeats: int, log: Callable[[str], None] = print, timeout: float = 900.0
) -> dict[str, list[dict[str, Any]]]:
    """Run every job `repeats` times, in alternated order; results per job key, errors included."""
    results: dict[str, list[dict[str, Any]]] = {job.key: [] for job in jobs}
    for repeat in range(repeats):
        for job in alternated(jobs, repeat):
            result = run_job(job, timeout=timeout)
            results[job.key].append(result)
            log(f"  [{repeat + 1}/{repeats}] {job.key}: {brief(result)}")
    return results


def brief(result: dict[str, Any]) -> str:
    if "error" in result:
        return "FAILED " + result["error"]
    shown = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return ", ".join(f"{k}={v:.4g}" for k, v in list(shown.items())[:6])


@dataclass(frozen=True)
class Stats:
    """Median and spread of one figure over repeats (the median is what tables show)."""

    median: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


def stats(results: Sequence[dict[str, Any]], name: str) -> Stats | None:
    """Statistics of `name` over the successful results, or None when none has it."""
    values = [r[name] for r in results if "error" not in r and r.get(name) is not None]
    if not values:
        return None
    return Stats(statistics.median(values), min(values), max(values), len(values))


def errors(results: Sequence[dict[str, Any]]) -> list[str]:
    return [r["error"] for r in results if "error" in r]
