"""The Home page: the active dataset and how to change it (folder, zip, back to the demo), the latest run."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from page_helpers import assert_clean, open_page, texts, with_name

from simpsons_core import paths, settings

pytest_plugins = ["page_fixtures", "run_fixtures"]


def metrics(at) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_without_configuration_the_demo_data_is_active(unconfigured: Path) -> None:
    at = open_page("home")
    assert with_name(at.markdown, "the generated demo dataset in " + str(paths.datasets_dir() / "demo"))
    assert metrics(at)["classes"] == "4"
    assert int(metrics(at)["training images"]) > 0 and int(metrics(at)["test images"]) > 0
    assert "No training run yet." in texts(at.markdown)


def test_a_typed_folder_becomes_the_active_dataset_and_the_demo_comes_back(
    unconfigured: Path, tiny_dataset: Path
) -> None:
    at = open_page("home")
    at.text_input(key="folder_path").set_value(str(tiny_dataset / "missing")).run()
    at.button[0].click().run()
    assert with_name(at.error, "That folder cannot be used") and with_name(at.error, "does not exist")
    assert settings.load_settings().get("dataset") is None

    at.text_input(key="folder_path").set_value(str(tiny_dataset)).run()
    at.button[0].click().run()
    assert_clean(at)
    assert settings.active_dataset().path == tiny_dataset.resolve()
    assert with_name(at.success, f"Now using {tiny_dataset}")
    assert with_name(at.markdown, f"{tiny_dataset} (chosen in this workspace)")

    back = next(button for button in at.button if button.label == "Back to the demo data")
    back.click().run()
    assert settings.active_dataset().is_demo
    assert with_name(at.success, "Back to the demo dataset")


def test_an_uploaded_zip_is_unpacked_and_used_and_its_left_out_files_listed(
    unconfigured: Path, tiny_dataset: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for image in sorted((tiny_dataset / "simpsons_trainset").rglob("*.jpg"))[::4]:
            archive.write(image, f"mine/{image.parent.name}/{image.name}")
        archive.writestr("mine/README.txt", "not an image")
        archive.writestr("../escape.jpg", b"x")
    at = open_page("home")
    at.file_uploader(key="zip_upload").set_value(("mine.zip", buffer.getvalue(), "application/zip")).run()
    next(button for button in at.button if button.label == "Unpack and use").click().run()
    assert_clean(at)
    active = settings.active_dataset()
    assert active.source == "workspace" and active.path == paths.datasets_dir() / "mine" / "mine"
    assert with_name(at.success, "Unpacked") and metrics(at)["classes"] == "4"
    left_out = at.dataframe[0].value
    assert set(left_out["file"]) == {"mine/README.txt", "../escape.jpg"}
    assert not (unconfigured / "escape.jpg").exists() and not (paths.datasets_dir() / "escape.jpg").exists()


def test_a_broken_zip_gets_a_specific_error(unconfigured: Path) -> None:
    at = open_page("home")
    at.file_uploader(key="zip_upload").set_value(("broken.zip", b"PK not really", "application/zip")).run()
    next(button for button in at.button if button.label == "Unpack and use").click().run()
    assert_clean(at)
    assert with_name(at.error, "broken.zip is not a readable .zip file")


def test_an_empty_dataset_folder_is_explained_not_crashed(empty_dataset: Path) -> None:
    at = open_page("home")
    assert with_name(at.error, "The active dataset cannot be used") and with_name(
        at.error, "No labelled images"
    )
    assert with_name(at.info, "SIMPSONS_DATA environment variable chooses the dataset")


def test_a_one_class_dataset_gets_a_warning(
    workspace: Path, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = tmp_path / "one"
    shutil.copytree(tiny_dataset / "simpsons_trainset" / "bart_simpson", one / "train" / "bart_simpson")
    shutil.copytree(tiny_dataset / "simpson_testset" / "bart_simpson", one / "test" / "bart_simpson")
    monkeypatch.setenv("SIMPSONS_DATA", str(one))
    at = open_page("home")
    assert with_name(at.warning, "has only one class (bart_simpson)")


def test_the_latest_run_and_its_accuracy_are_shown(workspace_run: Path) -> None:
    at = open_page("home")
    assert with_name(at.markdown, workspace_run.name)
    assert metrics(at)["state"] == "completed"
    assert metrics(at)["best validation accuracy"].endswith("%")
