"""Runs in words: progress with an ETA, durations, and history rows that label a leaky test split."""

from __future__ import annotations

import shutil
from pathlib import Path

from simpsons_core.runs.folder import RunInfo, read_run
from simpsons_core.runs.summary import format_seconds, history_rows, progress_text

pytest_plugins = ["run_fixtures"]


def running(**status) -> RunInfo:
    return RunInfo("r", Path("/nowhere"), "running", status={"epochs": 3, **status}, config={"epochs": 3})


def test_progress_while_loading_and_while_training() -> None:
    share, text = progress_text(running(phase="loading training images", phase_done=30, phase_total=120))
    assert share == 0.25 and text == "Loading training images 30/120..."
    status = {"phase": "training", "epoch": 2, "step": 15, "total_steps": 30, "steps_per_epoch": 10}
    share, text = progress_text(running(**status, eta_seconds=75))
    assert share == 0.5 and text == "Epoch 2/3, step 5/10, about 1 min 15 s left"


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (None, 4.4, 75, 3 * 3600 + 65)] == [
        "-",
        "4 s",
        "1 min 15 s",
        "3 h 01 min",
    ]


def test_a_finished_run_in_words_and_as_a_history_row(trained_run: Path, workspace: Path) -> None:
    info = read_run(trained_run)
    share, text = progress_text(info)
    assert share == 1.0 and text.startswith("1 of 1 epochs in ") and "best validation accuracy" in text
    [row] = history_rows([info])
    assert row["run"] == info.id and row["state"] == "completed" and row["epochs"] == "1/1"
    # Validated on the leak-free split: training scored the best model on the test split too.
    assert row["test accuracy"].endswith("% (no overlap with training found (0 of 24 near-duplicates))")


def test_test_split_accuracy_carries_the_overlap_note(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path, workspace: Path
) -> None:
    leaky = Path(shutil.copytree(tiny_dataset, tmp_path / "leaky"))
    shutil.copy(
        sorted((leaky / "simpsons_trainset" / "bart_simpson").glob("*.jpg"))[0],
        leaky / "simpson_testset" / "bart_simpson" / "bart_simpson_copy.jpg",
    )
    info = read_run(shutil.copytree(trained_run, tmp_path / "run"))
    (info.path / "evaluation-test.json").unlink()  # a run validated on the test split saves none
    info.config = {
        **info.config,
        "validation": "test",
        "data_dir": str(leaky),
        "dataset": {"path": str(leaky)},
    }
    [row] = history_rows([info])
    test_images = len(list((leaky / "simpson_testset").rglob("*.jpg")))
    assert row["validation"] == "test split"
    assert row["test accuracy"].endswith(f"(may overlap training: 1 of {test_images} near-duplicates)")
