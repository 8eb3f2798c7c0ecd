"""Runs in words: progress with an ETA and each phase around training, durations, history rows that label a
leaky test split, and the time a new run should take from earlier ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simpsons_core.config import TrainConfig
from simpsons_core.run.folder import RunInfo
from simpsons_core.run.lookup import read_run
from simpsons_core.run.summary import (
    FIRST_STEP,
    estimate_seconds,
    format_seconds,
    history_rows,
    honest_accuracy,
    progress_text,
    rough_duration,
)

pytest_plugins = ["run_fixtures"]


def running(finished_epochs: int = 0, **status) -> RunInfo:
    epochs = [{"type": "epoch", "epoch": n, "seconds": 1.0} for n in range(1, finished_epochs + 1)]
    return RunInfo(
        "r", Path("/nowhere"), "running", status={"epochs": 3, **status}, config={"epochs": 3}, epochs=epochs
    )


TRAINING = {"phase": "training", "total_steps": 30, "steps_per_epoch": 10}


def test_progress_while_loading_and_while_training() -> None:
    share, text = progress_text(running(phase="loading training images", phase_done=30, phase_total=120))
    assert share == 0.25 and text == "Loading training images 30/120..."
    share, text = progress_text(running(1, **TRAINING, epoch=2, step=15, eta_seconds=75))
    assert share == 0.5 and text == "Epoch 2/3, step 5/10, about 1 min 15 s left"


@pytest.mark.parametrize(
    ("status", "finished_epochs", "expected"),
    [
        ({"phase": "starting"}, 0, (0.0, "Starting...")),
        (
            {"phase": "building the model", "phase_done": 0, "phase_total": 0},
            0,
            (0.0, "Building the model..."),
        ),
        # The quick recipe's features count; the trainer writes "training" before the first step.
        (
            {"phase": "features", "phase_done": 6, "phase_total": 24},
            0,
            (0.25, "Computing the frozen network's features 6/24..."),
        ),
        ({**TRAINING, "epoch": 0, "step": 0, "eta_seconds": None}, 0, (0.0, FIRST_STEP)),
        # Every batch of epoch 1 done, its validation still running.
        (
            {**TRAINING, "epoch": 2, "step": 10, "eta_seconds": 20},
            0,
            (1 / 3, "Epoch 1/3: measuring validation accuracy..."),
        ),
        (
            {**TRAINING, "epoch": 2, "step": 10, "eta_seconds": 20},
            1,
            (1 / 3, "Epoch 2/3, step 0/10, about 20 s left"),
        ),
        (
            {**TRAINING, "epoch": 3, "step": 30, "eta_seconds": 0},
            2,
            (1.0, "Epoch 3/3: measuring validation accuracy..."),
        ),
        ({**TRAINING, "epoch": 3, "step": 30, "eta_seconds": 0}, 3, (1.0, "Saving the model...")),
        # Later phases write no counts: the features' counts left in status.json are not theirs.
        ({"phase": "saving", "phase_done": 24, "phase_total": 24}, 3, (1.0, "Saving the model...")),
        (
            {"phase": "calibrating", "phase_done": 24, "phase_total": 24},
            3,
            (1.0, "Calibrating the confidences on the validation images..."),
        ),
        ({"phase": "scoring the test split"}, 3, (1.0, "Scoring the test split...")),
    ],
)
def test_progress_names_each_phase_before_the_first_step_and_after_the_last(
    status: dict, finished_epochs: int, expected: tuple[float, str]
) -> None:
    share, text = progress_text(running(finished_epochs, **status))
    assert (round(share, 6), text) == (round(expected[0], 6), expected[1])


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
    # Validated on the leak-free split: training scored the best model on the test split too; the cell keeps
    # the overlap's count and drops its words.
    assert row["test accuracy"].endswith("% (0 of 24 near-duplicates)")
    assert list(row)[:3] == ["run", "state", "duration"]


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
    assert row["test accuracy"] == f"{info.best_val_accuracy:.1%} (1 of 25 near-duplicates)"
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


def finished(run_id: str, model: str, size: int, images: int, seconds: list[float], took: float) -> RunInfo:
    """A completed run of `model` at `size` px on `images` training images, its epochs taking `seconds`."""
    return RunInfo(
        run_id,
        Path("/nowhere") / run_id,
        "completed",
        config={
            "model": model,
            "image_size": size,
            "epochs": len(seconds),
            "dataset": {"train_images": images},
        },
        status={
            "started_at": "2026-01-01T12:00:00+00:00",
            "finished_at": f"2026-01-01T12:{took // 60:02.0f}:{took % 60:02.0f}+00:00",
        },
        epochs=[{"type": "epoch", "epoch": n, "seconds": s} for n, s in enumerate(seconds, start=1)],
    )


def test_the_time_estimate_scales_the_measured_speed_of_comparable_runs() -> None:
    # 100 images: 2 s an epoch (0.02 s an image), 10 s outside the epochs (0.1 s an image).
    runs = [
        finished("a", "lite0", 96, 100, [2.0, 2.0], 14),
        finished("b", "lite0", 96, 100, [2.0, 2.0, 2.0], 16),
        finished("other-size", "lite0", 128, 100, [50.0], 60),
        finished("other-model", "compact", 96, 100, [50.0], 60),
    ]
    # 500 images in the folder, 20% held out: 400 trained on, for 10 epochs.
    config = TrainConfig(model="lite0", image_size=96, epochs=10, validation="split", validation_fraction=0.2)
    estimate = estimate_seconds(config, 500, runs)
    assert estimate is not None and estimate.runs == 2
    assert estimate.seconds == pytest.approx(400 * (0.02 * 10 + 0.1))
    assert estimate.line() == "about 2 min, from 2 earlier runs of lite0 at 96 px"
    on_test = estimate_seconds(config.replace(validation="test"), 500, runs)
    assert on_test is not None and on_test.seconds == pytest.approx(500 * 0.3)  # the whole folder trains
    assert estimate_seconds(config.replace(image_size=64), 500, runs) is None
    running_run = finished("c", "lite0", 64, 100, [2.0], 10)
    running_run.state = "running"
    assert estimate_seconds(config.replace(image_size=64), 500, [running_run]) is None


def test_rough_duration() -> None:
    assert [rough_duration(s) for s in (3, 42, 100, 1490, 3600 + 25 * 60 + 10, 7200)] == [
        "10 s",
        "40 s",
        "2 min",
        "25 min",
        "1 h 25 min",
        "2 h",
    ]
