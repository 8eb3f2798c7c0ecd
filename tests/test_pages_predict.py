"""The Predict page: uploads go through the run's Predictor (the same answer as the core gives) and show at
their own size in a grid, a corrupt file gets one plain message, the answers download as the CLI's CSV, an
answer below the run's threshold is "not sure", explain shows Grad-CAM of a chosen class beside the photo, the
webcam photo comes first, and missing or mismatched models are explained."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from media_capture import ServedMedia, image_size
from page_helpers import assert_clean, open_page, other_classes_dataset, texts, with_name
from run_fixtures import record_threshold

from simpsons_core.data.images import open_rgb
from simpsons_core.inference.predict import Predictor

pytest_plugins = ["page_fixtures", "run_fixtures", "media_capture"]


def upload(at, *files: tuple[str, bytes, str]) -> None:
    at.file_uploader(key="predict_uploads").set_value(list(files)).run()


def first_test_image(tiny_dataset: Path, name: str) -> Path:
    return sorted((tiny_dataset / "simpson_testset" / name).glob("*.jpg"))[0]


def test_without_a_run_the_page_links_to_train(on_dataset: Path) -> None:
    at = open_page("predict")
    assert with_name(at.info, "There is no trained model yet")
    assert [uploader.key for uploader in at.file_uploader] == ["import_files"]  # only "Import a model"


def test_an_upload_gets_the_cores_prediction_and_a_corrupt_one_its_own_error(
    workspace_run: Path, tiny_dataset: Path, served_media: ServedMedia
) -> None:
    picture = first_test_image(tiny_dataset, "lisa_simpson")
    at = open_page("predict")
    assert at.selectbox(key="predict_run").value == workspace_run.name
    assert not at.download_button  # nothing to download before a picture
    truncated = picture.read_bytes()[: picture.stat().st_size // 2]
    upload(
        at,
        ("lisa.jpg", picture.read_bytes(), "image/jpeg"),
        ("broken.png", b"\x89PNG broken", "image/png"),
        ("corrupt.jpg", truncated, "image/jpeg"),
    )
    assert_clean(at)
    expected = Predictor.from_run(workspace_run).predict([picture])[0]
    assert with_name(at.markdown, f"**{expected.label}** ({expected.confidence:.1%})")
    assert with_name(at.error, "broken.png is not an image Pillow can read")
    assert "corrupt.jpg could not be read: the file is damaged or incomplete." in texts(at.error)
    assert not with_name(at.error, "broken.png: broken.png")
    [shown] = at.image
    assert shown.captions == ["lisa.jpg"]
    assert image_size(served_media, shown.value[0]) == open_rgb(picture).size  # its own size, not enlarged
    # The fixture run's validation split is too small for a threshold: the page says so, and never "not sure".
    assert with_name(at.caption, "Answers carry no sure / not sure verdict: choosing its threshold needs")
    assert not with_name(at.warning, "Not sure")


def test_below_the_runs_threshold_the_answer_is_not_sure(workspace_run: Path, tiny_dataset: Path) -> None:
    picture = first_test_image(tiny_dataset, "lisa_simpson")
    expected = Predictor.from_run(workspace_run).predict([picture])[0]
    threshold = expected.confidence + 0.01
    record_threshold(workspace_run, threshold)
    at = open_page("predict")
    assert with_name(at.caption, f"Answers at >= {threshold:.1%} confidence were 97.5% right")
    upload(at, ("lisa.jpg", picture.read_bytes(), "image/jpeg"))
    assert_clean(at)
    assert with_name(at.warning, f"Not sure: maybe {expected.label} ({expected.confidence:.0%})")
    assert not with_name(at.markdown, f"**{expected.label}**")


def test_the_predictions_download_as_the_clis_csv(
    workspace_run: Path, tiny_dataset: Path, served_media: ServedMedia
) -> None:
    picture = first_test_image(tiny_dataset, "lisa_simpson")
    at = open_page("predict")
    upload(
        at, ("lisa.jpg", picture.read_bytes(), "image/jpeg"), ("broken.png", b"\x89PNG broken", "image/png")
    )
    [button] = at.download_button
    assert button.label == "Download predictions (CSV)"
    rows = list(csv.DictReader(io.StringIO(served_media(button.proto.url).decode())))
    predictor = Predictor.from_run(workspace_run)
    expected = predictor.predict([picture])[0]
    assert list(rows[0]) == ["source", "label", "confidence", "sure", "error", *predictor.labels]
    assert [row["source"] for row in rows] == ["lisa.jpg", "broken.png"]
    assert rows[0]["label"] == expected.label and rows[0]["error"] == ""
    assert float(rows[0]["confidence"]) == pytest.approx(expected.confidence, abs=1e-5)
    assert rows[1]["label"] == "" and "not an image Pillow can read" in rows[1]["error"]


def test_explain_shows_grad_cam_of_a_chosen_class_beside_the_photo(
    workspace_run: Path, tiny_dataset: Path
) -> None:
    picture = first_test_image(tiny_dataset, "bart_simpson")
    at = open_page("predict")
    upload(at, ("bart.jpg", picture.read_bytes(), "image/jpeg"))
    plain = at.image[0].value
    at.toggle(key="predict_explain").set_value(True).run()
    assert_clean(at)
    predicted = Predictor.from_run(workspace_run).predict([picture])[0].label
    [choice] = [box for box in at.selectbox if box.label == "Grad-CAM of"]
    assert choice.value == predicted
    photo, heatmap = at.image
    assert photo.captions == ["bart.jpg"] and photo.value == plain  # the photo stays
    assert heatmap.captions == [f"Grad-CAM: red = what speaks for {predicted}"]
    other = next(label for label in choice.options if label != predicted)
    choice.set_value(other).run()
    assert_clean(at)
    assert at.image[1].captions == [f"Grad-CAM: red = what speaks for {other}"]
    assert at.image[1].value != heatmap.value


def test_the_webcam_photo_comes_first(
    workspace_run: Path, tiny_dataset: Path, served_media: ServedMedia
) -> None:
    at = open_page("predict")
    upload(at, ("bart.jpg", first_test_image(tiny_dataset, "bart_simpson").read_bytes(), "image/jpeg"))
    photo = first_test_image(tiny_dataset, "lisa_simpson").read_bytes()
    at.camera_input(key="predict_camera").set_value(("image.jpg", photo, "image/jpeg")).run()
    assert_clean(at)
    assert [image.captions[0] for image in at.image] == ["webcam photo", "bart.jpg"]
    rows = list(csv.DictReader(io.StringIO(served_media(at.download_button[0].proto.url).decode())))
    assert [row["source"] for row in rows] == ["webcam photo", "bart.jpg"]


def test_a_model_whose_labels_differ_from_the_dataset_gets_a_warning(
    workspace_run: Path, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMPSONS_DATA", str(other_classes_dataset(tiny_dataset, tmp_path / "other")))
    at = open_page("predict")
    assert with_name(
        at.warning, "the active dataset has bart_simpson, lisa_simpson, marge_simpson, ned_flanders"
    )


def test_a_run_deleted_while_shown_is_handled(workspace_run: Path, tiny_dataset: Path) -> None:
    picture = first_test_image(tiny_dataset, "bart_simpson")
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
