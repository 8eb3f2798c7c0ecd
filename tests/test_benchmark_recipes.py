"""`python -m benchmarks.recipes`: the table's wording, the `--eval` folders' columns on a briefly trained
run, and a quick run end to end on generated images."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.recipes import RECIPE_RUNS, EvalScore, RecipeResult, eval_score, main, markdown, parse_args
from benchmarks.report import REPORTS, SCRATCH
from simpsons_core.cpu import cpu_kind
from simpsons_core.inference.calibration import ConfidentErrors
from simpsons_core.inference.evaluate import read_evaluation

pytest_plugins = ["run_fixtures"]

OVERLAP = "may overlap training: 200 of 200 near-duplicates"


def test_the_table_puts_both_figures_side_by_side_with_the_overlap() -> None:
    common = dict(data="/data/full", epochs=24, train_seconds=540.0, run_seconds=600.0, state="completed")
    results = [
        RecipeResult(
            row="tutorial",
            precision="bfloat16",
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
    studio = next(line for line in lines if line.startswith("| studio | - | 24"))
    assert tutorial == (
        f"| tutorial | bfloat16 | 24 | 540 s | 600 s, load 1.0-1.5 (162 s) | - | 96.5% ({OVERLAP}) "
        "| bart 0.90, homer 1.00 (test split) |"
    )
    assert studio.startswith("| studio | - | 24 | 540 s | 600 s, load 0.0-0.0 (595 s) | 96.3% | 98.0% (")
    assert "| studio | failed: no images |" in text


def test_each_eval_folder_adds_balanced_accuracy_and_confident_errors_columns() -> None:
    common = dict(data="/data/full", epochs=20, state="completed", test_accuracy=0.98)
    kaggle = EvalScore(balanced_accuracy=0.931, confident_errors=ConfidentErrors(10, 107, 0.9))
    results = [
        RecipeResult(
            row="studio", evals={"kaggle": kaggle, "phone": EvalScore(error="no known class")}, **common
        ),
        RecipeResult(
            row="tutorial",
            evals={"kaggle": EvalScore(0.5, ConfidentErrors(0, 0, 0.9)), "phone": EvalScore(error="x")},
            **common,
        ),
        RecipeResult(row="tutorial on leak-free split", data="/data/full", state="failed", error="killed"),
    ]
    lines = markdown(results).splitlines()
    header = lines[2]
    assert header.endswith(
        "| per-class recall | kaggle balanced accuracy | kaggle confident errors "
        "| phone balanced accuracy | phone confident errors |"
    )
    assert all(line.count("|") == header.count("|") for line in lines[3:7])
    assert lines[4].endswith("| 93.1% | 9.3% (10 of 107) | failed: no known class | - |")
    assert lines[5].endswith("| 50.0% | - (0 of 0) | failed: x | - |")  # no confident answer: no rate
    assert lines[6].startswith("| tutorial on leak-free split | failed: killed |")


def test_eval_scores_a_run_on_another_folder_or_says_why_it_cannot(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))  # evaluating writes into the run folder
    held_out = Path(shutil.copytree(tiny_dataset / "simpson_testset", tmp_path / "held_out"))
    score = eval_score(run, held_out)
    saved = read_evaluation(run, "folder:held_out")
    assert saved.images == 24 and score.error is None
    recalls = [c.recall for c in saved.classes]
    assert score.balanced_accuracy == pytest.approx(sum(recalls) / len(recalls))
    assert score.confident_errors == saved.trust.confident_errors
    assert score.confident_errors.answered <= 24 and score.confident_errors.at == 0.9

    strangers = tmp_path / "strangers"  # files labelled by name, of a class the model does not know
    strangers.mkdir()
    shutil.copy(next((held_out / "bart_simpson").iterdir()), strangers / "ned_flanders_1.jpg")
    failed = eval_score(run, strangers)
    assert failed.balanced_accuracy is None and "None of the 1 images" in failed.error


@pytest.mark.slow
def test_a_quick_run_trains_the_recipes_and_writes_the_report(
    tiny_dataset: Path, workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports" / "recipes"
    held_out = shutil.copytree(tiny_dataset / "simpson_testset", tmp_path / "held_out")
    options = [
        "--quick",
        "--data",
        str(tiny_dataset),
        "--eval",
        str(held_out),
        "--recipes",
        "tutorial,studio",
    ]
    assert main([*options, "--out", str(out)]) == 0
    assert os.environ["SIMPSONS_HOME"] == str(workspace)  # restored; the runs went to a private workspace
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())

    report = json.loads(out.with_suffix(".json").read_text())
    assert report["meta"]["quick"] is True
    tutorial, studio = report["results"]
    no_overlap = "no overlap with training found (0 of 24 near-duplicates)"
    for result in (tutorial, studio):
        assert result["state"] == "completed" and result["epochs"] == 1
        assert result["precision"] in ("float32", "bfloat16")
        assert 0 <= result["test_accuracy"] <= 1 and result["test_overlap"] == no_overlap
        assert sorted(result["recall"]) == ["bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson"]
        assert result["cpu_seconds"] > 0 and result["run_seconds"] > result["train_seconds"] > 0
        scores = result["evals"]["held_out"]
        assert 0 <= scores["balanced_accuracy"] <= 1 and scores["confident_errors"]["answered"] <= 24
    assert tutorial["validation_accuracy"] is None  # it validates on the test split
    assert 0 <= studio["validation_accuracy"] <= 1
    text = out.with_suffix(".md").read_text()
    assert f"| tutorial | {tutorial['precision']} | 1 |" in text and no_overlap in text
    assert "| held_out balanced accuracy | held_out confident errors |" in text


def test_the_default_table_has_every_recipe_and_the_other_rows_can_be_asked_for() -> None:
    default = ["tutorial", "tutorial on leak-free split", "studio", "pretrained", "quick"]
    assert parse_args([]).rows == default
    rows = parse_args(["--recipes", "studio,studio with tutorial augmentation"]).rows
    assert rows == ["studio", "studio with tutorial augmentation"]
    assert RECIPE_RUNS["studio with tutorial augmentation"] == ("studio", ("--augment", "tutorial"))
    with pytest.raises(SystemExit):
        parse_args(["--recipes", "studio,bigger"])


def test_every_recipe_can_be_trained_in_each_precision_side_by_side() -> None:
    rows = parse_args(["--recipes", "pretrained (float32),pretrained (bfloat16)"]).rows
    assert [RECIPE_RUNS[row] for row in rows] == [
        ("pretrained", ("--precision", "float32")),
        ("pretrained", ("--precision", "bfloat16")),
    ]
    for recipe in ("tutorial", "studio", "quick"):
        assert RECIPE_RUNS[f"{recipe} (bfloat16)"] == (recipe, ("--precision", "bfloat16"))
    assert "pretrained (auto)" not in RECIPE_RUNS  # the plain rows train with auto


def test_reports_go_to_the_cpu_kinds_folder_and_quick_ones_to_scratch(tmp_path: Path) -> None:
    assert parse_args([]).out == REPORTS / cpu_kind() / "recipes"
    assert parse_args(["--quick"]).out == SCRATCH / "recipes"
    with pytest.raises(SystemExit):
        parse_args(["--quick", "--out", str(REPORTS / cpu_kind() / "recipes")])


def test_eval_folders_must_exist_and_have_different_names(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "phone", tmp_path / "b" / "phone"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    assert parse_args([]).evals == []
    assert parse_args(["--eval", str(first), "--eval", str(tmp_path / "a")]).evals == [first, tmp_path / "a"]
    with pytest.raises(SystemExit):
        parse_args(["--eval", str(tmp_path / "missing")])
    with pytest.raises(SystemExit):  # both would be "phone ..." columns
        parse_args(["--eval", str(first), "--eval", str(second)])
