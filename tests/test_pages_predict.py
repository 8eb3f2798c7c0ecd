"""The Predict page: uploads go through the run's Predictor (the same answer as the core gives), a corrupt
file gets its own error, an answer below the run's threshold is "not sure", explain overlays Grad-CAM, and
missing or mismatched models are explained."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from page_helpers import assert_clean, open_page, other_classes_dataset, with_name
from run_fixtures import record_threshold

from simpsons_core.inference.predict import Predictor

pytest_plugins = ["page_fixtures", "run_fixtures"]


def upload(at, *files: tuple[str, bytes, str]) -> None:
    at.file_uploader(key="predict_uploads").set_value(list(files)).run()


def test_without_a_run_the_page_links_to_train(on_dataset: Path) -> None:
    at = open_page("predict")
    assert with_name(at.info, "There is no trained model yet")
    assert not at.file_uploader


def test_an_upload_gets_the_cores_prediction_and_a_corrupt_one_its_own_error(
    workspace_run: Path, tiny_dataset: Path
) -> None:
    picture = sorted((tiny_dataset / "simpson_testset" / "lisa_simpson").glob("*.jpg"))[0]
    at = open_page("predict")
    assert at.selectbox(key="predict_run").value == workspace_run.name
    upload(
        at, ("lisa.jpg", picture.read_bytes(), "image/jpeg"), ("broken.png", b"\x89PNG broken", "image/png")
    )
    assert_clean(at)
    expected = Predictor.from_run(workspace_run).predict([picture])[0]
    assert with_name(at.markdown, f"**{expected.label}** ({expected.confidence:.1%})")
    assert with_name(at.error, "broken.png: broken.png is not an image Pillow can read")
    assert [image.captions[0] for image in at.image] == ["lisa.jpg"]
    # The fixture run's validation split is too small for a threshold: the page says so, and never "not sure".
    assert with_name(at.caption, "Answers carry no sure / not sure verdict: choosing its threshold needs")
    assert not with_name(at.warning, "Not sure")


def test_below_the_runs_threshold_the_answer_is_not_sure(workspace_run: Path, tiny_dataset: Path) -> None:
    picture = sorted((tiny_dataset / "simpson_testset" / "lisa_simpson").glob("*.jpg"))[0]
    expected = Predictor.from_run(workspace_run).predict([picture])[0]
    threshold = expected.confidence + 0.01
    record_threshold(workspace_run, threshold)
    at = open_page("predict")
    assert with_name(at.caption, f"Answers at >= {threshold:.1%} confidence were 97.5% right")
    upload(at, ("lisa.jpg", picture.read_bytes(), "image/jpeg"))
    assert_clean(at)
    assert with_name(at.warning, f"Not sure: maybe {expected.label} ({expected.confidence:.0%})")
    assert not with_name(at.markdown, f"**{expected.label}**")


def test_explain_overlays_the_grad_cam_heatmap(workspace_run: Path, tiny_dataset: Path) -> None:
    picture = sorted((tiny_dataset / "simpson_testset" / "bart_simpson").glob("*.jpg"))[0]
    at = open_page("predict")
    upload(at, ("bart.jpg", picture.read_bytes(), "image/jpeg"))
    plain = at.image[0].value
    at.toggle(key="predict_explain").set_value(True).run()
    assert_clean(at)
    assert at.image[0].captions[0].startswith("bart.jpg (Grad-CAM")
    assert at.image[0].value != plain


def test_a_model_whose_labels_differ_from_the_dataset_gets_a_warning(
    workspace_run: Path, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMPSONS_DATA", str(other_classes_dataset(tiny_dataset, tmp_path / "other")))
    at = open_page("predict")
    assert with_name(
        at.warning, "the active dataset has bart_simpson, lisa_simpson, marge_simpson, ned_flanders"
    )


def test_a_run_deleted_while_shown_is_handled(workspace_run: Path, tiny_dataset: Path) -> None:
    picture = sorted((tiny_dataset / "simpson_testset" / "bart_simpson").glob("*.jpg"))[0]
    at = open_page("predict")
    shutil.rmtree(workspace_run)
    upload(at, ("bart.jpg", picture.read_bytes(), "image/jpeg"))
    assert_clean(at)
    assert with_name(at.info, "There is no trained model yet")


def test_a_damaged_best_model_falls_back_to_the_last_one_with_a_note(workspace_run: Path) -> None:
    best = workspace_run / "best.keras"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    at = open_page("predict")
    assert at.selectbox(key="predict_run").value == workspace_run.name
    assert with_name(at.warning, "best.keras is damaged (not a complete .keras file")
    assert with_name(at.warning, "Using model.keras (the model after the last epoch) instead.")
    assert with_name(at.info, "this model knows")  # the page works on with model.keras
