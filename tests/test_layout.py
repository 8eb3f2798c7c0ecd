"""Layout detection: each supported layout, labels from file names, and untidy folders as problems."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from simpsons_core.data.folders import detect_layout, label_from_name


def _image(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), colour).save(path)
    return path


def _classes(root: Path, names: dict[str, int]) -> None:
    for name, count in names.items():
        for k in range(count):
            _image(root / name / f"{k}.png")


def _kinds(layout) -> list[tuple[str, str]]:
    return [(p.kind, layout.relative(p.path) if p.path else "") for p in layout.problems]


def test_tutorial_layout(tiny_dataset: Path) -> None:
    layout = detect_layout(tiny_dataset)
    assert layout.kind == "tutorial"
    assert layout.classes == ["bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson"]
    assert len(layout.train) == 4 * 24 and len(layout.test) == 4 * 6
    assert {item.label for item in layout.test} == set(layout.classes)
    assert all(item.path.parent.name == item.label for item in layout.train)
    assert "simpsons_trainset/" in layout.description and "simpson_testset/" in layout.description
    assert layout.problems == []


def test_train_and_val_folders(tmp_path: Path) -> None:
    _classes(tmp_path / "train", {"cat": 3, "dog": 2})
    _classes(tmp_path / "val", {"cat": 1, "dog": 1})
    layout = detect_layout(tmp_path)
    assert (layout.kind, layout.classes, len(layout.train), len(layout.test)) == (
        "train-test",
        ["cat", "dog"],
        5,
        2,
    )
    assert layout.test_dir == tmp_path.resolve() / "val"
    assert "val/" in layout.description


def test_test_folder_wins_over_val_when_both_exist(tmp_path: Path) -> None:
    _classes(tmp_path / "Train", {"cat": 2})
    _classes(tmp_path / "val", {"cat": 1})
    _classes(tmp_path / "test", {"cat": 3})
    layout = detect_layout(tmp_path)
    assert layout.test_dir is not None and layout.test_dir.name == "test"
    assert len(layout.test) == 3


def test_single_folder_of_class_subfolders(tmp_path: Path) -> None:
    _classes(tmp_path, {"bart_simpson": 2, "homer_simpson": 3})
    (tmp_path / "README.md").write_text(
        "about this data"
    )  # documentation beside the classes is not a problem
    layout = detect_layout(tmp_path)
    assert (layout.kind, layout.test, layout.test_dir) == ("single-folder", [], None)
    assert layout.classes == ["bart_simpson", "homer_simpson"]
    assert layout.description.startswith("Found class folders: training images in <class>/, no test split")
    assert layout.problems == []


def test_flat_test_folder_labelled_by_file_name(tmp_path: Path) -> None:
    _classes(tmp_path / "simpsons_trainset", {"homer": 1, "homer_simpson": 1, "bart_simpson": 1})
    test = tmp_path / "simpson_testset"
    _image(test / "homer_simpson_12.jpg")
    _image(test / "bart_simpson_3.png")
    _image(test / "homer_7.jpg")
    _image(test / "milhouse_1.jpg")
    layout = detect_layout(tmp_path)
    assert layout.flat_test
    assert sorted((item.path.name, item.label) for item in layout.test) == [
        ("bart_simpson_3.png", "bart_simpson"),
        ("homer_7.jpg", "homer"),
        ("homer_simpson_12.jpg", "homer_simpson"),
    ]
    assert ("unlabelled", "simpson_testset/milhouse_1.jpg") in _kinds(layout)
    assert "labelled by file name" in layout.description


def test_label_from_name_takes_the_longest_class_name() -> None:
    classes = ["homer", "homer_simpson", "lisa_simpson"]
    assert label_from_name("homer_simpson_12.jpg", classes) == "homer_simpson"
    assert label_from_name("Homer_3.JPG", classes) == "homer"
    assert label_from_name("lisa_simpson.png", classes) == "lisa_simpson"
    assert label_from_name("homers_1.jpg", classes) is None
    assert label_from_name("bart_simpson_1.jpg", classes) is None


def test_untidy_folders_become_problems(tmp_path: Path) -> None:
    train, test = tmp_path / "train", tmp_path / "test"
    _classes(train, {"a": 2, "b": 2, "only_train": 1})
    _classes(test, {"a": 1, "b": 1, "only_test": 1})
    (train / "a" / "notes.txt").write_text("not a picture")
    (train / "empty").mkdir()
    _image(train / "loose.jpg")
    (train / "a" / ".DS_Store").write_bytes(b"\0")  # hidden litter is skipped silently
    layout = detect_layout(tmp_path)
    assert layout.classes == ["a", "b", "only_train"]
    kinds = _kinds(layout)
    assert ("non-image", "train/a/notes.txt") in kinds
    assert ("empty-class", "train/empty") in kinds
    assert ("unlabelled", "train/loose.jpg") in kinds
    messages = [p.message for p in layout.problems if p.kind == "missing-class"]
    assert any("only_train" in m and "no test images" in m for m in messages)
    assert any("only_test" in m and "cannot learn" in m for m in messages)
    assert len(kinds) == 5


def test_wrapper_folder_is_looked_through(tmp_path: Path) -> None:
    _classes(tmp_path / "archive" / "dataset", {"x": 1, "y": 1})
    layout = detect_layout(tmp_path)
    assert layout.root == (tmp_path / "archive" / "dataset").resolve()
    assert layout.classes == ["x", "y"]


def test_no_images_or_no_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="No labelled images found"):
        detect_layout(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        detect_layout(tmp_path / "missing")
