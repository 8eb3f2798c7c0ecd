"""Prediction through a trained run: the evaluation pipeline's numbers, batches, top-k, run lookup, CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from simpsons_core.cli.main import main
from simpsons_core.inference.predict import Prediction, Predictor, image_files, model_key
from simpsons_core.runs.lookup import resolve_run

pytest_plugins = ["run_fixtures"]


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor.from_run(trained_run)


@pytest.fixture(scope="module")
def test_images(tiny_dataset: Path) -> list[Path]:
    return image_files([tiny_dataset / "simpson_testset"])


def test_loads_the_runs_model_labels_and_size(predictor: Predictor, trained_run: Path) -> None:
    assert predictor.labels == json.loads((trained_run / "labels.json").read_text())
    assert predictor.image_size == 32
    expected = trained_run / ("best.keras" if (trained_run / "best.keras").exists() else "model.keras")
    assert resolve_run(trained_run).model_path == expected


def test_same_probabilities_as_the_evaluation_pipeline(
    predictor: Predictor, trained_run, test_images
) -> None:
    """Prediction and evaluation must preprocess identically, or the Evaluate page would lie about Predict."""
    from simpsons_core.data.decoding import decode_images
    from simpsons_core.data.folders import LabelledImage
    from simpsons_core.data.pipeline import evaluation_dataset

    config = resolve_run(trained_run).train_config()
    items = [LabelledImage(path, path.parent.name) for path in test_images[:8]]
    decoded = decode_images(items, predictor.labels, predictor.image_size)
    through_pipeline = predictor.model.predict(evaluation_dataset(decoded, config), verbose=0)
    through_predictor = [p.probabilities for p in predictor.predict(decoded.paths)]
    np.testing.assert_allclose(
        through_pipeline, [[row[name] for name in predictor.labels] for row in through_predictor], atol=1e-5
    )


def test_batches_give_the_same_answers_as_single_images(predictor: Predictor, test_images) -> None:
    small_batches = Predictor(predictor.model, predictor.labels, predictor.augment, batch_size=5)
    together = small_batches.predict(test_images)
    assert len(together) == len(test_images)
    for path, result in zip(test_images[:6], together, strict=False):
        single = predictor.predict_one(path)
        assert single.label == result.label
        assert single.probabilities == pytest.approx(result.probabilities, abs=1e-6)


def test_top_k_is_sorted_and_bounded(predictor: Predictor, test_images) -> None:
    two = predictor.predict_one(test_images[0], top_k=2)
    assert len(two.top) == 2 and two.top[0][1] >= two.top[1][1]
    assert (two.label, two.confidence) == two.top[0]
    assert two.confidence == max(two.probabilities.values())
    every = predictor.predict_one(test_images[0], top_k=99)
    assert [name for name, _ in every.top] == sorted(
        every.probabilities, key=lambda n: -every.probabilities[n]
    )


def test_runs_are_found_by_id_folder_and_latest(workspace: Path, trained_run: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no completed run"):
        resolve_run("latest")
    copy = workspace / "runs" / "20260101-000000-copy"
    shutil.copytree(trained_run, copy)
    assert resolve_run("20260101-000000-copy").path == copy
    assert resolve_run(copy).path == copy
    assert resolve_run("latest").path == copy
    with pytest.raises(FileNotFoundError, match="No run 'nope'"):
        resolve_run("nope")


def test_model_key_changes_when_the_model_is_saved_again(tmp_path: Path, trained_run: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    info = resolve_run(copy)
    before = model_key(info)
    os.utime(info.model_path, (1, 1))
    assert model_key(info) != before


def test_cli_predicts_folders_into_a_csv(
    tmp_path: Path, trained_run: Path, tiny_dataset: Path, capsys
) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(tiny_dataset / "simpson_testset", folder)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "predictions.csv"
    code = main(["predict", str(trained_run), str(folder), "--csv", str(out), "--top-k", "2"])
    assert code == 1  # one file could not be read
    rows = list(csv.DictReader(out.open()))
    labels = json.loads((trained_run / "labels.json").read_text())
    assert len(rows) == len(image_files([folder]))
    assert list(rows[0]) == ["source", "label", "confidence", "error", *labels]
    broken = next(row for row in rows if row["source"].endswith("broken.jpg"))
    assert "not an image" in broken["error"] and broken["label"] == ""
    good = [row for row in rows if not row["error"]]
    assert all(row["label"] in labels for row in good)
    assert all(abs(sum(float(row[name]) for name in labels) - 1) < 1e-3 for row in good)
    printed = capsys.readouterr().out
    assert "broken.jpg: error:" in printed


def test_cli_refuses_paths_without_images(tmp_path: Path, trained_run: Path, capsys) -> None:
    assert main(["predict", str(trained_run), str(tmp_path)]) == 2
    assert "No image files" in capsys.readouterr().err


def test_a_top_class_below_half_is_flagged_as_low_confidence() -> None:
    unsure = Prediction("a.jpg", {"bart": 0.45, "lisa": 0.35, "homer": 0.2}, [("bart", 0.45), ("lisa", 0.35)])
    sure = Prediction("b.jpg", {"bart": 0.9, "lisa": 0.1}, [("bart", 0.9)])
    unreadable = Prediction("c.jpg", {}, [], error="c.jpg is not an image")
    assert [p.low_confidence for p in (unsure, sure, unreadable)] == [True, False, False]
