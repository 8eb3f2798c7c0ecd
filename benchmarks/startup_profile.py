"""Where a training process spends its start, from a sampling profile.

py-spy records `python -m simpsons_core train` for one epoch; each sample of the main thread (idle ones too,
so the sums are wall-clock seconds) goes to the first stage whose markers all appear in its stack.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from simpsons_core.tf_notices import IMPORT_THREAD

RATE = 50  # samples per second
# (stage, markers): the first stage whose markers all appear in a main-thread stack takes the sample.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("waiting for the thread importing TensorFlow", ("train_in_foreground", "Thread.join")),
    ("finding, splitting and decoding the images", ("_load_data (simpsons_core",)),
    ("building the input pipeline (tracing the augmentation)", ("training_dataset (simpsons_core",)),
    ("building and compiling the model", ("build_model (simpsons_core",)),
    ("building and compiling the model", ("compile_model (simpsons_core",)),
    ("tracing the training step", ("TensorFlowTrainer.fit", "Function._initialize")),
    ("the first step, the epoch and its validation", ("TensorFlowTrainer.fit",)),
    ("scoring the test split, saving", ("_score_test_split",)),
    ("setting up the run (strategy, validation pipeline, files)", ("_train (simpsons_core",)),
    ("Python's start, the command line's imports, exit", ()),
]


def profile_training_start(data_dir: str, epochs: int = 1) -> dict[str, Any]:
    """Seconds per stage of a fresh `train` process on `data_dir` (default recipe, `epochs` epochs, a private
    workspace), and how long the thread importing TensorFlow ran. {"error": ...} when py-spy is missing."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return {"error": "py-spy is not installed (it is pinned in requirements-dev.txt)"}
    with tempfile.TemporaryDirectory(prefix="simpsons-startup-") as workdir:
        raw = Path(workdir) / "samples.txt"
        command = [str(py_spy), "record", "--rate", str(RATE), "--threads", "--idle", "--format", "raw"]
        command += ["--output", str(raw), "--", sys.executable, "-m", "simpsons_core", "train"]
        command += ["--data", data_dir, "--epochs", str(epochs)]
        env = {**os.environ, "SIMPSONS_HOME": str(Path(workdir) / "workspace")}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not raw.exists():
            return {"error": f"py-spy failed: {(done.stderr or done.stdout).strip()[-500:]}"}
        return summarise(raw.read_text())


def summarise(samples: str) -> dict[str, Any]:
    """py-spy's raw output (`--threads`: each stack starts with its thread) as seconds per stage."""
    stages: collections.Counter[str] = collections.Counter()
    import_thread = 0
    for line in samples.splitlines():
        stack, _, count = line.rpartition(" ")
        if IMPORT_THREAD in stack.split(";", 1)[0]:
            import_thread += int(count)
        elif stack.split(";", 1)[0].endswith("MainThread"):
            stage = next(name for name, markers in STAGES if all(m in stack for m in markers))
            stages[stage] += int(count)
    order = list(dict.fromkeys(name for name, _ in STAGES))
    return {
        "stages": {name: stages[name] / RATE for name in order if stages[name]},
        "import_thread_seconds": import_thread / RATE,
    }


def describe(profile: dict[str, Any]) -> str:
    """The profile as text lines, for the report."""
    if "error" in profile:
        return profile["error"]
    lines = [f"{seconds:6.2f} s  {stage}" for stage, seconds in profile["stages"].items()]
    lines.append(f"{profile['import_thread_seconds']:6.2f} s  (in parallel) the thread importing TensorFlow")
    return "\n".join(lines)
