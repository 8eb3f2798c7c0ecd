"""Runs in words: progress with an ETA, durations, and history rows that label a leaky test split."""

from __future__ import annotations

import shutil
from pathlib import Path

from simpsons_core.runs.folder import RunInfo
from simpsons_core.runs.lookup import read_run
from simpsons_core.runs.summary import format_seconds, history_rows, honest_accuracy, progress_text

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


def test_a_run_validated_on_the_test_split_shows_that_figure_with_its_recorded_overlap(
    trained_run: Path, tmp_path: Path
) -> None:
    info = read_run(shutil.copytree(trained_run, tmp_path / "run"))
    (info.path / "evaluation-test.json").unlink()  # a run validated on the test split saves none
    info.config = {**info.config, "validation": "test"}
    overlap = "may overlap training: 1 of 25 near-duplicates"
    info.status = {**info.status, "test_overlap": overlap}
    info.status.pop("test_accuracy", None)
    [row] = history_rows([info])
    figures = honest_accuracy(info)
    assert row["validation"] == "test split" and figures.test == info.best_val_accuracy
    assert (
        row["test accuracy"]
        == f"{info.best_val_accuracy:.1%} (may overlap training: 1 of 25 near-duplicates)"
    )
    assert figures.line().endswith("(on the test split, may overlap training: 1 of 25 near-duplicates)")


def test_without_a_recorded_overlap_the_test_figure_still_says_it_may_overlap(
    trained_run: Path, tmp_path: Path
) -> None:
    """An imported run evaluated later has no status figures: the saved evaluation's are used."""
    info = read_run(shutil.copytree(trained_run, tmp_path / "run"))
    saved = info.folder.read_evaluation("test")
    info.status = {key: value for key, value in info.status.items() if not key.startswith("test_")}
    assert honest_accuracy(info).test == saved["accuracy"]
    assert honest_accuracy(info).overlap == saved["leak_note"]
    (info.path / "evaluation-test.json").unlink()
    assert honest_accuracy(info).test is None and history_rows([info])[0]["test accuracy"] == "-"
