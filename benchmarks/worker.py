"""The child side of every measurement: `python -m benchmarks.worker TASK PARAMS OUT`.

A task is a function returning a dict of figures; PARAMS is its keyword arguments as JSON. The worker adds the
process's peak RSS and its wall time since interpreter start, and writes the dict to OUT as JSON (stdout stays
free for TensorFlow's chatter).
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import psutil

TASKS = {
    "matmul": "benchmarks.hardware:measure_matmul",
    "model_flops": "benchmarks.hardware:measure_model_flops",
    "train_speed": "benchmarks.train_step:measure_training_speed",
    "train_accuracy": "benchmarks.train_step:measure_accuracy",
    "make_run": "benchmarks.prediction:make_run",
    "cold_load": "benchmarks.prediction:measure_cold_load",
    "latency": "benchmarks.prediction:measure_latency",
    "scan": "benchmarks.scanning:measure_scan",
    "first_progress": "benchmarks.first_progress:measure_first_progress",
    "precision_speed": "benchmarks.precision:measure_precision_speed",
    "dashboard_run": "benchmarks.dashboard:measure_dashboard_run",
    "cli_run": "benchmarks.dashboard:measure_cli_run",
    "idle_server": "benchmarks.dashboard:measure_idle_server",
}


def call_task(task: str, params: dict[str, Any]) -> dict[str, Any]:
    module_name, function_name = TASKS[task].split(":")
    return getattr(importlib.import_module(module_name), function_name)(**params)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str]) -> int:
    task, params_json, out = argv
    result = call_task(task, json.loads(params_json))
    result["peak_rss_mb"] = peak_rss_mb()
    result["process_seconds"] = time.time() - psutil.Process().create_time()
    Path(out).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
