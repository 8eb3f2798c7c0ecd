"""The Make a dataset page: a new dataset becomes the active one; classes are added and renamed; pictures come
from uploads (loose or zipped, a corrupt one left out with its reason) and the webcam (saved as JPEG); a
class's grid moves and removes pictures, each undone from the page, and the trash is emptied only after a
confirmation; a folder of the user's asks once before the first change. (The webcam burst needs a camera:
tests/browser/test_make_dataset.py.)"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from page_helpers import assert_clean, open_page, with_name
from PIL import Image
from streamlit.testing.v1 import AppTest

from simpsons_core import paths, settings
from simpsons_core.data import editing

pytest_plugins = ["page_fixtures"]


def jpeg(colour: str, size: tuple[int, int] = (80, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def button(at: AppTest, label: str):
    return next(item for item in at.button if item.label.startswith(label))


def create(at: AppTest, name: str, classes: str = "") -> AppTest:
    at.text_input(key="make_name").set_value(name)
    at.text_input(key="make_classes").set_value(classes)
    button(at, "Create the dataset").click().run()
    assert_clean(at)
    return at


def counts(at: AppTest) -> dict[str, str]:
    """The overview's "**class** · N pictures" lines as class -> "N pictures"."""
    lines = [item.value for item in at.markdown if item.value.startswith("**") and " · " in item.value]
    return {line.split("**")[1]: line.split(" · ")[1] for line in lines}


def upload(at: AppTest, *files: tuple[str, bytes, str]) -> AppTest:
    [uploader] = at.file_uploader
    uploader.set_value(list(files)).run()
    at.button(key="make_add_uploads").click().run()
    assert_clean(at)
    return at


@pytest.fixture
def made(unconfigured: Path) -> tuple[AppTest, Path]:
    """A session on the page that has just made the dataset "mine" with classes bart and homer."""
    at = create(open_page("make_dataset"), "mine", "bart, homer")
    return at, paths.datasets_dir() / "mine"


def test_a_new_dataset_has_its_class_folders_and_becomes_the_active_one(made) -> None:
    at, folder = made
    assert with_name(at.success, f"Created {folder}; it is the active dataset now")
    assert sorted(path.name for path in folder.iterdir()) == ["bart", "homer"]
    assert settings.active_dataset().path == folder
    assert counts(at) == {"bart": "0 pictures", "homer": "0 pictures"}
    assert with_name(at.caption, f"Working on: {folder} (chosen in this workspace)")
    assert at.selectbox(key="make_target").value == "bart"  # ready to fill the first class


def test_a_name_that_is_a_path_is_refused_with_the_reason(unconfigured: Path) -> None:
    at = create(open_page("make_dataset"), "../escape")
    assert with_name(at.error, "The dataset was not created") and with_name(at.error, "path separator")
    assert settings.active_dataset().is_demo and not (paths.home().parent / "escape").exists()


def test_classes_are_added_and_renamed(made) -> None:
    at, folder = made
    at.text_input(key="make_new_class").set_value("lisa")
    button(at, "Add the class").click().run()
    assert with_name(at.success, "Added the class lisa.")
    assert (folder / "lisa").is_dir() and at.selectbox(key="make_target").value == "lisa"
    at.selectbox(key="make_rename_from").set_value("homer")
    at.text_input(key="make_renamed").set_value("homer_simpson")
    button(at, "Rename").click().run()
    assert_clean(at)
    assert with_name(at.success, "Renamed the class homer to homer_simpson.")
    assert sorted(path.name for path in folder.iterdir()) == ["bart", "homer_simpson", "lisa"]
    at.text_input(key="make_new_class").set_value("Bart")
    button(at, "Add the class").click().run()
    assert with_name(at.error, "The class was not added") and with_name(at.error, "has a class bart already")


def test_uploads_and_a_zip_fill_the_chosen_class_and_a_corrupt_file_is_left_out(made) -> None:
    at, folder = made
    at.selectbox(key="make_target").set_value("homer").run()
    upload(at, ("one.jpg", jpeg("red"), "image/jpeg"), ("two.png", jpeg("blue"), "image/png"))
    assert with_name(at.success, "Added 2 pictures to homer.")
    assert counts(at) == {"bart": "0 pictures", "homer": "2 pictures"}
    assert not at.file_uploader[0].value  # emptied, so the same files are not added twice

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("pics/a.jpg", jpeg("green"))
        zipped.writestr("pics/b.jpg", jpeg("yellow"))
    upload(
        at,
        ("pics.zip", archive.getvalue(), "application/zip"),
        ("broken.jpg", b"not a picture", "image/jpeg"),
    )
    assert with_name(at.warning, "Added 2 pictures to homer. Left out: broken.jpg")
    assert counts(at)["homer"] == "4 pictures"
    assert sorted(path.name for path in (folder / "homer").iterdir()) == [
        "a.jpg",
        "b.jpg",
        "one.jpg",
        "two.png",
    ]


def test_a_webcam_picture_is_saved_as_a_jpeg_and_the_camera_is_ready_for_the_next(made) -> None:
    at, folder = made
    assert not at.camera_input  # the camera is on only while a webcam source is chosen
    at.button_group(key="make_source").set_value("Webcam").run()
    at.camera_input[0].set_value(("image.jpg", jpeg("white", (640, 480)), "image/jpeg")).run()
    assert_clean(at)
    assert with_name(at.success, "Added 1 camera picture to bart.")
    [saved] = (folder / "bart").iterdir()
    assert (
        saved.suffix == ".jpg" and Image.open(saved).format == "JPEG" and Image.open(saved).size == (640, 480)
    )
    [camera] = at.camera_input
    assert camera.value is None  # a fresh camera: one click, one picture
    at.button_group(key="make_source").set_value("Webcam burst").run()  # drawn (it needs a real camera)
    assert_clean(at)
    assert not at.camera_input and at.number_input(key="make_burst_count").value == 10


def fill(at: AppTest, colours: dict[str, list[str]]) -> AppTest:
    for name, shades in colours.items():
        at.selectbox(key="make_target").set_value(name).run()
        upload(at, *((f"{shade}.jpg", jpeg(shade), "image/jpeg") for shade in shades))
    return at


def pick(at: AppTest, path: Path) -> None:
    at.checkbox(key=f"make_fix_pick:{path}").check().run()


def test_the_class_grid_moves_and_removes_pictures_and_each_is_undone(made) -> None:
    at, folder = made
    fill(at, {"bart": ["red", "orange", "yellow"], "homer": ["blue"]})
    at.selectbox(key="make_fix_class").set_value("bart").run()
    orange, red = folder / "bart" / "orange.jpg", folder / "bart" / "red.jpg"
    pick(at, orange)
    pick(at, red)
    at.selectbox(key="make_fix_target").set_value("homer")
    at.button(key="make_fix_move").click().run()
    assert_clean(at)
    assert with_name(at.success, "2 pictures moved to homer")
    assert sorted(path.name for path in (folder / "homer").iterdir()) == ["blue.jpg", "orange.jpg", "red.jpg"]
    assert counts(at) == {"bart": "1 picture", "homer": "3 pictures"}
    assert at.button(key="make_fix_undo").label == "Undo: 2 pictures moved to homer"
    assert not at.checkbox(key=f"make_fix_pick:{folder / 'bart' / 'yellow.jpg'}").value

    at.button(key="make_fix_undo").click().run()
    assert with_name(at.success, "Undone: 2 pictures moved to homer.")
    assert orange.is_file() and red.is_file() and counts(at)["bart"] == "3 pictures"

    before = red.read_bytes()
    pick(at, red)
    at.button(key="make_fix_remove").click().run()
    assert with_name(at.success, "1 picture removed (in the trash)")
    assert not red.exists() and counts(at)["bart"] == "2 pictures"
    [trashed] = [path for path in editing.trash_folder(folder).rglob("red.jpg")]
    assert trashed.read_bytes() == before
    assert any(expander.label.startswith("Trash: 1 file") for expander in at.expander)

    at.button(key="make_fix_undo").click().run()
    assert red.read_bytes() == before and not trashed.exists()


def test_the_trash_is_emptied_only_after_a_confirmation(made) -> None:
    at, folder = made
    fill(at, {"bart": ["red", "orange"]})
    pick(at, folder / "bart" / "red.jpg")
    at.button(key="make_fix_remove").click().run()
    empty = at.button(key="make_fix_empty")
    assert empty.disabled
    at.checkbox(key="make_fix_empty_sure").check().run()
    at.button(key="make_fix_empty").click().run()
    assert_clean(at)
    assert with_name(at.success, "Deleted 1 file from the trash.")
    assert editing.trash_size(folder) == (0, 0)
    assert not any(expander.label.startswith("Trash") for expander in at.expander)
    assert (folder / "bart" / "orange.jpg").is_file()  # only the trash was emptied


def test_a_folder_of_the_users_asks_once_before_the_first_change(
    workspace: Path, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = Path(shutil.copytree(tiny_dataset / "simpsons_trainset", tmp_path / "own"))
    monkeypatch.setenv("SIMPSONS_DATA", str(own))
    at = open_page("make_dataset")
    [consent] = [box for box in at.checkbox if box.key == "make_add_consent"]
    assert "never deleted" in consent.label and not at.file_uploader
    assert counts(at)["bart_simpson"] == "24 pictures"  # seen, not yet changeable
    consent.check().run()
    assert_clean(at)
    assert at.file_uploader and not editing.needs_consent(own)
    again = open_page("make_dataset")  # asked once per folder, not once per session
    assert not [box for box in again.checkbox if box.key.endswith("_consent")]


def test_an_empty_or_missing_folder_gets_a_way_forward(empty_dataset: Path, monkeypatch) -> None:
    at = open_page("make_dataset")
    assert with_name(at.info, "No classes yet") and not at.error
    monkeypatch.setenv("SIMPSONS_DATA", str(empty_dataset / "gone"))
    at = open_page("make_dataset")
    assert with_name(at.error, "is not a folder any more: start a new dataset above")
    assert at.text_input(key="make_name")  # the way forward
