"""`python -m benchmarks.recipes`: the table's wording, and a quick run end to end on generated images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.recipes import RECIPE_RUNS, RecipeResult, main, markdown, parse_args

OVERLAP = "may overlap training: 200 of 200 near-duplicates"


def test_the_table_puts_both_figures_side_by_side_with_the_overlap() -> None:
    common = dict(data="/data/full", epochs=24, train_seconds=540.0, run_seconds=600.0, state="completed")
    results = [
        RecipeResult(
            row="tutorial",
            cpu_seconds=300.0,
            load_average=(1.0, 1.5),
            test_accuracy=0.965,
            test_overlap=OVERLAP,
            recall={"bart_simpson": 0.9, "homer_simpson": 1.0},
            **common,
        ),
        RecipeResult(
            row="studio",
            cpu_seconds=1100.0,
            validation_accuracy=0.9631,
            test_accuracy=0.98,
            test_overlap=OVERLAP,
            recall={"bart_simpson": 0.95, "homer_simpson": 0.97},
            **common,
        ),
        RecipeResult(row="studio", data="/data/mini", state="failed", error="no images"),
    ]
    text = markdown(results)
    assert text.count("### ") == 2 and "### /data/full" in text and "### /data/mini" in text
    lines = text.splitlines()
    tutorial = next(line for line in lines if line.startswith("| tutorial"))
    studio = next(line for line in lines if line.startswith("| studio | 24"))
    assert tutorial == (
        f"| tutorial | 24 | 540 s | 600 s, load 1.0-1.5 (162 s) | - | 96.5% ({OVERLAP}) "
        "| bart 0.90, homer 1.00 (test split) |"
    )
    assert studio.startswith("| studio | 24 | 540 s | 600 s, load 0.0-0.0 (595 s) | 96.3% | 98.0% (")
    assert "| studio | failed: no images |" in text


@pytest.mark.slow
def test_a_quick_run_trains_the_recipes_and_writes_the_report(
    tiny_dataset: Path, workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports" / "recipes"
    assert (
        main(["--quick", "--data", str(tiny_dataset), "--recipes", "tutorial,studio", "--out", str(out)]) == 0
    )
    assert os.environ["SIMPSONS_HOME"] == str(workspace)  # restored; the runs went to a private workspace
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())

    report = json.loads(out.with_suffix(".json").read_text())
    assert report["meta"]["quick"] is True
    tutorial, studio = report["results"]
    no_overlap = "no overlap with training found (0 of 24 near-duplicates)"
    for result in (tutorial, studio):
        assert result["state"] == "completed" and result["epochs"] == 1
        assert 0 <= result["test_accuracy"] <= 1 and result["test_overlap"] == no_overlap
        assert sorted(result["recall"]) == ["bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson"]
        assert result["cpu_seconds"] > 0 and result["run_seconds"] > result["train_seconds"] > 0
    assert tutorial["validation_accuracy"] is None  # it validates on the test split
    assert 0 <= studio["validation_accuracy"] <= 1
    text = out.with_suffix(".md").read_text()
    assert "| tutorial | 1 |" in text and "| studio | 1 |" in text and no_overlap in text


def test_the_default_table_has_three_rows_and_the_other_rows_can_be_asked_for() -> None:
    assert parse_args([]).rows == ["tutorial", "tutorial on leak-free split", "studio"]
    rows = parse_args(["--recipes", "studio,studio with tutorial augmentation"]).rows
    assert rows == ["studio", "studio with tutorial augmentation"]
    assert RECIPE_RUNS["studio with tutorial augmentation"] == ("studio", ("--augment", "tutorial"))
    with pytest.raises(SystemExit):
        parse_args(["--recipes", "studio,bigger"])
