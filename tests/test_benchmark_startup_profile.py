"""The start-up profile of a training process: py-spy samples sorted into stages, in wall-clock seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.startup_profile import RATE, describe, profile_training_start, summarise
from simpsons_core.tf_notices import IMPORT_THREAD


def sample(thread: str, *frames: str, count: int) -> str:
    return ";".join([thread, *frames]) + f" {count}"


def test_samples_of_the_main_thread_go_to_the_first_stage_whose_markers_all_match() -> None:
    main = "thread (7): MainThread"
    raw = "\n".join(
        [
            sample(main, "<module> (simpsons_core/__main__.py:3)", count=RATE),
            sample(
                main, "train_in_foreground (simpsons_core/training.py:90)", "Thread.join (x)", count=2 * RATE
            ),
            sample(
                main,
                "_train (simpsons_core/training.py:1)",
                "_load_data (simpsons_core/training.py:2)",
                count=RATE,
            ),
            sample(main, "TensorFlowTrainer.fit (k)", "Function._initialize (tf)", count=3 * RATE),
            sample(main, "TensorFlowTrainer.fit (k)", "Function._call (tf)", count=RATE // 2),
            sample(f"thread (8): {IMPORT_THREAD}", "<module> (keras/__init__.py:7)", count=4 * RATE),
            sample("thread (9): decode_0", "load_pixels (simpsons_core/images.py:9)", count=9 * RATE),
        ]
    )

    profile = summarise(raw)

    assert profile["stages"] == {
        "waiting for the thread importing TensorFlow": 2.0,
        "finding, splitting and decoding the images": 1.0,
        "tracing the training step": 3.0,
        "the first step, the epoch and its validation": 0.5,
        "Python's start, the command line's imports, exit": 1.0,
    }
    assert profile["import_thread_seconds"] == 4.0  # other threads (decoding) are not counted
    assert describe(profile).splitlines()[-1].endswith("(in parallel) the thread importing TensorFlow")


@pytest.mark.slow
def test_a_real_training_process_is_profiled_by_stage(tiny_dataset: Path, workspace: Path) -> None:
    profile = profile_training_start(str(tiny_dataset))

    assert "error" not in profile, profile.get("error")
    stages = profile["stages"]
    for stage in ("finding, splitting and decoding the images", "tracing the training step"):
        assert stages[stage] > 0
    assert profile["import_thread_seconds"] > 0.5  # TensorFlow's import is seconds, even on a fast machine
