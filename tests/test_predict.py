"""Prediction through a trained run: the evaluation pipeline's numbers, batches, top-k, run lookup, the
"sure" verdict from the run's threshold, CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from run_fixtures import record_threshold

from simpsons_core.cli.main import main
from simpsons_core.inference.predict import Prediction, Predictor, image_files, model_key
from simpsons_core.run.lookup import resolve_run

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
    assert list(rows[0]) == ["source", "label", "confidence", "sure", "error", *labels]
    assert {row["sure"] for row in rows} == {""}  # the fixture run has no threshold: no verdict
    broken = next(row for row in rows if row["source"].endswith("broken.jpg"))
    assert "not an image" in broken["error"] and broken["label"] == ""
    good = [row for row in rows if not row["error"]]
    assert all(row["label"] in labels for row in good)
    assert all(abs(sum(float(row[name]) for name in labels) - 1) < 1e-3 for row in good)
    printed = capsys.readouterr().out
    assert "broken.jpg: error:" in printed
    assert printed.startswith("Answers carry no sure / not sure verdict: choosing its threshold needs")


def test_cli_refuses_paths_without_images(tmp_path: Path, trained_run: Path, capsys) -> None:
    assert main(["predict", str(trained_run), str(tmp_path)]) == 2
    assert "No image files" in capsys.readouterr().err


def test_below_the_runs_threshold_an_answer_is_not_sure(predictor: Predictor, test_images) -> None:
    plain = predictor.predict(test_images)
    assert {p.sure for p in plain} == {None} and [p.answer for p in plain] == [p.label for p in plain]
    threshold = float(np.median([p.confidence for p in plain]))
    judged = Predictor(predictor.model, predictor.labels, predictor.augment, threshold=threshold)
    answers = judged.predict(test_images)
    assert [p.sure for p in answers] == [p.confidence >= threshold for p in plain]
    unsure = next(p for p in answers if not p.sure)
    assert unsure.answer == f"not sure (maybe {unsure.label}, {unsure.confidence:.0%})"
    sure = next(p for p in answers if p.sure)
    assert sure.answer == sure.label
    assert Prediction("c.jpg", {}, [], error="c.jpg is not an image").answer == "error: c.jpg is not an image"


def test_the_cli_says_not_sure_below_the_runs_threshold(
    tmp_path: Path, trained_run: Path, predictor: Predictor, test_images, capsys
) -> None:
    run = shutil.copytree(trained_run, tmp_path / "run")
    plain = predictor.predict(test_images)
    threshold = float(np.median([p.confidence for p in plain]))
    record_threshold(run, threshold)
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(run), *map(str, test_images), "--csv", str(out), "--top-k", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"Answers at >= {threshold:.1%} confidence were 97.5% right")
    rows = {row["source"]: row for row in csv.DictReader(out.open())}
    for p in plain:
        top = f"{p.label} {p.confidence:.1%}"
        sure = p.confidence >= threshold
        expected = top if sure else f"not sure (maybe {p.label}, {p.confidence:.0%}); {top}"
        assert f"{p.source}: {expected}" in printed
        assert rows[p.source]["sure"] == ("true" if sure else "false")
