"""The Predict page's "Import a model" panel: a Teachable Machine zip (or a Keras `.h5` with its `labels.txt`)
becomes the selected run, which then classifies uploads; a broken export gets its specific message."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from page_helpers import assert_clean, open_page, with_name
from test_teachable_machine import LABELS, random_weights, write_keras2_h5, write_tfjs_export

pytest_plugins = ["page_fixtures"]


def zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, f"tm-export/{file.name}")
    return buffer.getvalue()


def import_files(at, *files: tuple[str, bytes, str], name: str = "") -> None:
    at.file_uploader(key="import_files").set_value(list(files))
    at.text_input(key="import_name").set_value(name).run()  # the button is enabled once files are there
    at.button(key="import_button").click().run()


def test_an_imported_zip_becomes_the_selected_run_and_classifies_uploads(
    on_dataset: Path, tmp_path: Path
) -> None:
    export = zipped(write_tfjs_export(tmp_path / "export", random_weights()))
    at = open_page("predict")
    assert with_name(at.info, "There is no trained model yet")
    import_files(at, ("tm-export.zip", export, "application/zip"), name="Homer detector")
    assert_clean(at)
    [success] = at.success
    assert (
        success.value.startswith("Imported as run ")
        and "-homer-detector, now selected below" in success.value
    )
    assert (
        f"Classes: {', '.join(LABELS)}. Input: 32x32 RGB, centre square, pixel values x / 127.5 - 1"
        in success.value
    )
    assert at.selectbox(key="predict_run").value.endswith("-homer-detector")
    assert with_name(at.info, f"this model knows {', '.join(LABELS)}")
    picture = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(picture, "PNG")
    at.file_uploader(key="predict_uploads").set_value([("grey.png", picture.getvalue(), "image/png")]).run()
    assert_clean(at)
    assert [m for m in at.markdown if any(f"**{label}**" in m.value for label in LABELS)]


def test_a_keras_export_needs_its_labels_and_then_imports(on_dataset: Path, tmp_path: Path) -> None:
    h5 = write_keras2_h5(tmp_path / "keras_model.h5", random_weights())
    at = open_page("predict")
    import_files(at, ("keras_model.h5", h5.read_bytes(), "application/octet-stream"))
    assert_clean(at)
    assert with_name(at.error, "Could not import the model: labels.txt is missing beside keras_model.h5")
    assert not at.success
    labels = (tmp_path / "labels.txt").read_bytes()
    import_files(
        at,
        ("keras_model.h5", h5.read_bytes(), "application/octet-stream"),
        ("labels.txt", labels, "text/plain"),
    )
    assert_clean(at)
    assert at.selectbox(key="predict_run").value.endswith("-keras-model")
    assert with_name(at.success, f"Classes: {', '.join(LABELS)}.")


def test_a_quantised_export_is_refused_with_its_reason(on_dataset: Path, tmp_path: Path) -> None:
    quantised = {"quantization": {"dtype": "uint8", "scale": 0.01, "min": -1.0}}
    export = zipped(write_tfjs_export(tmp_path / "export", random_weights(), **quantised))
    at = open_page("predict")
    import_files(at, ("quantised.zip", export, "application/zip"))
    assert_clean(at)
    assert with_name(at.error, "Could not import the model: The weights are quantised")
    assert with_name(at.info, "There is no trained model yet")


def test_an_imported_model_exports_checked_on_the_active_datasets_pictures(
    on_dataset: Path, tmp_path: Path
) -> None:
    """It has no dataset of its own: checked (full-int8 calibrated) on the active dataset."""
    at = open_page("predict")
    import_files(at, ("tm-export.zip", zipped(write_tfjs_export(tmp_path / "export", random_weights())), ""))
    evaluate = open_page("evaluate")
    evaluate.button_group(key="export_formats").set_value(["tflite", "tflite-full-int8"]).run()
    evaluate.button(key="export_build").click().run()
    labels = [status.label for status in evaluate.status]
    assert [label.split(":")[0] for label in labels] == ["tflite", "tflite-full-int8"], labels
    assert all("top-1 agreement" in label for label in labels), labels
