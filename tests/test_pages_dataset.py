"""The Dataset page: counts, samples per class and the scan's health report, leakage pairs side by side (a
sample across classes, in thumbnails of one size), and duplicates in plain sentences."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from page_helpers import assert_clean, open_page, texts, with_name
from PIL import Image

from simpsons_core.data import images

pytest_plugins = ["page_fixtures", "run_fixtures"]


def test_counts_samples_and_health_of_the_tiny_dataset(on_dataset: Path) -> None:
    at = open_page("dataset")
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["classes"] == "4"
    assert metrics["training images"] == str(len(list((on_dataset / "simpsons_trainset").rglob("*.jpg"))))
    assert metrics["test images"] == str(len(list((on_dataset / "simpson_testset").rglob("*.jpg"))))
    for name in ("bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson"):
        assert f"**{name}**" in texts(at.markdown)
    sample_paths = [image for image in at.image if image.captions == [""]]
    assert len(sample_paths) >= 4
    assert with_name(at.markdown, "Train/test leakage")
    assert with_name(at.markdown, "tests memory, not recognition")


def test_a_leaky_test_split_is_reported_with_its_pairs(
    tiny_dataset: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaky = Path(shutil.copytree(tiny_dataset, tmp_path / "leaky"))
    source = sorted((leaky / "simpsons_trainset" / "lisa_simpson").glob("*.jpg"))[0]
    shutil.copy(source, leaky / "simpson_testset" / "lisa_simpson" / "lisa_simpson_copied.jpg")
    monkeypatch.setenv("SIMPSONS_DATA", str(leaky))
    at = open_page("dataset")
    test_images = len(list((leaky / "simpson_testset").rglob("*.jpg")))
    assert with_name(at.warning, f"1 of {test_images} test images are near-duplicates of training images")
    assert "**lisa_simpson** · identical file" in texts(at.markdown)
    captions = [image.captions[0] for image in at.image]
    assert "test: lisa_simpson_copied.jpg" in captions and f"train: {source.name}" in captions


def test_leakage_pairs_are_a_sample_across_classes(
    tiny_dataset: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nine bart leaks sort first by path; the eight pairs shown still include every class."""
    leaky = Path(shutil.copytree(tiny_dataset, tmp_path / "leaky"))
    leaks = {"bart_simpson": 9, "homer_simpson": 1, "lisa_simpson": 1, "marge_simpson": 1}
    for name, count in leaks.items():
        for k, source in enumerate(sorted((leaky / "simpsons_trainset" / name).glob("*.jpg"))[:count]):
            shutil.copy(source, leaky / "simpson_testset" / name / f"{name}_leak{k}.jpg")
    monkeypatch.setenv("SIMPSONS_DATA", str(leaky))
    at = open_page("dataset")
    headings = [text.split("**")[1] for text in texts(at.markdown) if text.endswith("· identical file")]
    assert len(headings) == 8 and set(headings) == set(leaks)
    assert with_name(at.caption, "... and 4 more test images with a twin")


def test_duplicates_within_a_split_read_as_sentences(
    tiny_dataset: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = Path(shutil.copytree(tiny_dataset, tmp_path / "copied"))
    source = sorted((copied / "simpson_testset" / "homer_simpson").glob("*.jpg"))[0]
    shutil.copy(source, source.with_name("homer_simpson_again.jpg"))
    monkeypatch.setenv("SIMPSONS_DATA", str(copied))
    at = open_page("dataset")
    assert with_name(at.markdown, "No near-duplicate training images.")
    assert with_name(
        at.markdown,
        "1 pair of near-duplicate test images (2 images). 2 files are byte-identical copies of another.",
    )


def test_every_thumbnail_is_letterboxed_to_one_square(
    on_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pictures of any shape take the same room, so the cards of a row line up."""
    boxed: list[tuple[int, int]] = []
    letterboxed = images.letterboxed

    def spy(image: Image.Image, side: int) -> Image.Image:
        result = letterboxed(image, side)
        boxed.append(result.size)
        return result

    monkeypatch.setattr(images, "letterboxed", spy)
    at = open_page("dataset")
    assert len(boxed) == len(at.image) >= 4 * 8 and len(set(boxed)) == 1
    (size,) = set(boxed)
    assert size[0] == size[1]


def test_problems_are_listed_by_kind(
    tiny_dataset: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messy = Path(shutil.copytree(tiny_dataset, tmp_path / "messy"))
    (messy / "simpsons_trainset" / "bart_simpson" / "notes.txt").write_text("hello")
    (messy / "simpsons_trainset" / "bart_simpson" / "broken.jpg").write_bytes(b"not a jpeg")
    monkeypatch.setenv("SIMPSONS_DATA", str(messy))
    at = open_page("dataset")
    problems = at.dataframe[-1].value
    assert {"non-image", "unreadable"} <= set(problems["kind"])
    assert "simpsons_trainset/bart_simpson/broken.jpg" in set(problems["file"])
    assert with_name(at.warning, "1 non-image") and with_name(at.warning, "1 unreadable")


def test_an_empty_or_missing_dataset_folder_gets_an_error(empty_dataset: Path, monkeypatch) -> None:
    at = open_page("dataset")
    assert with_name(at.error, "No labelled images found")
    monkeypatch.setenv("SIMPSONS_DATA", str(empty_dataset / "gone"))
    at = open_page("dataset")
    assert_clean(at)
    assert with_name(at.error, "is not a folder")
    assert not at.metric


def test_a_leaked_test_picture_is_removed_to_the_trash_and_brought_back(
    tiny_dataset: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaky = Path(shutil.copytree(tiny_dataset, tmp_path / "leaky"))
    source = sorted((leaky / "simpsons_trainset" / "bart_simpson").glob("*.jpg"))[0]
    copied = leaky / "simpson_testset" / "bart_simpson" / "bart_simpson_copied.jpg"
    shutil.copy(source, copied)
    monkeypatch.setenv("SIMPSONS_DATA", str(leaky))
    at = open_page("dataset")
    at.checkbox(key="dataset_pairs_consent").check().run()  # the user's own folder: asked once
    at.checkbox(key=f"dataset_pairs_pick:{copied}").check().run()
    at.button(key="dataset_pairs_remove").click().run()
    assert_clean(at)
    assert with_name(at.success, "1 picture removed (in the trash)")
    assert not copied.exists()
    assert not with_name(at.warning, "are near-duplicates of training images")
    assert any(expander.label.startswith("Trash: 1 file") for expander in at.expander)

    at.button(key="dataset_pairs_undo").click().run()
    assert_clean(at)
    assert copied.read_bytes() == source.read_bytes()
    assert with_name(at.warning, "1 of")  # the pair is back
