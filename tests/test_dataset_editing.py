"""Making and fixing a dataset (`data.editing`): no action ever loses or duplicates a file, every action can
be undone, a failure half-way is reported and recorded, a user's own folder is changed only with consent."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from simpsons_core import paths, settings
from simpsons_core.data import editing
from simpsons_core.data.folders import detect_layout
from simpsons_core.data.scan import scan_dataset
from simpsons_core.data.scan_cache import inspect_files
from simpsons_core.data.trash import EditIncomplete
from simpsons_core.run.lookup import read_run

pytest_plugins = ["run_fixtures"]


def jpeg(colour: str = "red", size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def contents(*folders: Path) -> dict[str, str]:
    """Every file below `folders` (path -> content hash), the journal and lock left out."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in ("journal.jsonl", ".lock")
    }


def make_dataset(name: str = "cats", **classes: list[str]) -> Path:
    """A dataset in the workspace with one JPEG per (class, colour)."""
    folder = editing.create_dataset(name, list(classes))
    for class_name, colours in classes.items():
        editing.add_pictures(folder, class_name, [(f"{colour}.jpg", jpeg(colour)) for colour in colours])
    return folder


def journal_lines(folder: Path) -> list[dict]:
    return [
        json.loads(line) for line in (editing.trash_folder(folder) / "journal.jsonl").read_text().splitlines()
    ]


def test_create_dataset_makes_a_folder_per_class_and_refuses_bad_names(workspace: Path) -> None:
    folder = editing.create_dataset("my-cats", ["tabby", "black"])
    assert folder == workspace / "datasets" / "my-cats" == editing.datasets_home() / "my-cats"
    assert sorted(path.name for path in folder.iterdir()) == ["black", "tabby"]
    for name, words in [
        ("", "Give the dataset a name"),
        (".", "Give the dataset a name"),
        ("a/b", "path separator"),
        ("..\\up", "path separator"),
        (".hidden", "hidden"),
        ("my-cats", "exists already"),
    ]:
        with pytest.raises(ValueError, match=words):
            editing.create_dataset(name)
    with pytest.raises(ValueError, match="train/test layout"):
        editing.create_dataset("other", ["train", "bart"])
    with pytest.raises(ValueError, match="repeat a name"):
        editing.create_dataset("other", ["bart", "Bart"])
    assert not (workspace / "datasets" / "other").exists()
    assert editing.add_class(folder, "ginger") == folder / "ginger"
    with pytest.raises(ValueError, match="has a class tabby already"):
        editing.add_class(folder, "Tabby")


def test_adding_pictures_keeps_the_readable_ones_under_new_names_and_says_why_others_are_skipped(
    workspace: Path,
) -> None:
    folder = editing.create_dataset("cats", ["tabby"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("holiday/cat.jpg", jpeg("green"))
        zipped.writestr("holiday/notes.txt", b"not a picture")
        zipped.writestr("__MACOSX/holiday/._cat.jpg", b"junk")
        zipped.writestr("../escape.jpg", jpeg("blue"))
        zipped.writestr("holiday/broken.jpg", b"\xff\xd8 not really")
    first, second = jpeg("red"), jpeg("white")
    result = editing.add_pictures(
        folder,
        "tabby",
        [
            ("a.jpg", first),
            ("dir/a.jpg", second),
            ("notes.txt", b"hi"),
            ("bad.png", b"nope"),
            ("more.zip", archive.getvalue()),
        ],
    )
    tabby = folder / "tabby"
    assert [path.name for path in result.added] == ["a.jpg", "a-2.jpg", "cat.jpg"]
    assert (tabby / "a.jpg").read_bytes() == first and (tabby / "a-2.jpg").read_bytes() == second
    reasons = dict(result.skipped)
    assert "not a picture" in reasons["notes.txt"]
    assert "not an image Pillow can read" in reasons["bad.png"]
    assert "not an image file" in reasons["more.zip: holiday/notes.txt"]
    assert "outside the dataset folder" in reasons["more.zip: ../escape.jpg"]
    assert "hidden or system file" in reasons["more.zip: __MACOSX/holiday/._cat.jpg"]
    assert "not an image Pillow can read" in reasons["more.zip: holiday/broken.jpg"]
    assert sorted(path.name for path in tabby.iterdir()) == ["a-2.jpg", "a.jpg", "cat.jpg"]
    assert sorted(path.name for path in paths.datasets_dir().iterdir()) == ["cats"]  # no unpacked leftovers
    assert not list(workspace.rglob("escape.jpg"))
    assert result.edit is not None and result.edit.describe() == "3 pictures added to tabby"
    again = editing.add_pictures(folder, "tabby", [(".jpg", jpeg())])
    assert again.added == () and again.edit is None


def test_a_camera_frame_is_saved_as_a_jpeg_named_by_the_time(workspace: Path) -> None:
    folder = editing.create_dataset("faces", ["me"])
    png = io.BytesIO()
    Image.new("RGBA", (64, 48), (10, 200, 30, 255)).save(png, "PNG")
    saved = editing.add_camera_picture(folder, "me", png.getvalue())
    assert saved.parent == folder / "me" and saved.name.startswith("camera-") and saved.suffix == ".jpg"
    with Image.open(saved) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (64, 48), "RGB")
    burst = editing.add_camera_pictures(folder, "me", [png.getvalue()] * 3)
    assert len(set(burst)) == 3 and editing.history(folder)[-1].describe() == "3 pictures added to me"
    with pytest.raises(ValueError, match="camera picture is not an image"):
        editing.add_camera_picture(folder, "me", b"garbage")


def test_moving_removing_and_undoing_never_lose_or_change_a_byte(workspace: Path) -> None:
    folder = make_dataset(tabby=["red", "green", "blue"], black=["black", "red"])
    trash = editing.trash_folder(folder)
    before = contents(folder)
    everything = sorted(before.values())

    moved = editing.move_pictures(folder, [folder / "tabby/red.jpg", "tabby/green.jpg"], "black")
    assert moved.describe() == "2 pictures moved to black"
    assert {move.target.name for move in moved.moves} == {"red-2.jpg", "green.jpg"}  # black/red.jpg was taken
    assert sorted(contents(folder).values()) == everything
    assert contents(folder)[str(folder / "black/red-2.jpg")] == before[str(folder / "tabby/red.jpg")]

    removed = editing.remove_pictures(folder, [folder / "black/black.jpg"])
    assert removed.describe() == "1 picture removed (in the trash)"
    (in_trash,) = [move.target for move in removed.moves]
    assert in_trash.is_relative_to(trash) and in_trash.relative_to(trash).parts[1:] == ("black", "black.jpg")
    assert sorted(contents(folder, trash).values()) == everything
    assert editing.trash_size(folder) == (1, in_trash.stat().st_size)

    assert editing.undo(folder).describe() == "1 picture removed (in the trash)"
    assert editing.undo(folder).describe() == "2 pictures moved to black"
    assert contents(folder) == before  # every byte back at its exact path
    assert editing.trash_size(folder) == (0, 0)
    assert editing.undo(folder).describe() == "2 pictures added to black"  # the set-up's adds, newest first
    assert not (folder / "black/black.jpg").exists() and (folder / "black").is_dir()  # made by create
    assert sorted(contents(folder, trash).values()) == everything  # an undone add goes to the trash


def test_a_move_keeps_the_picture_on_its_training_or_test_side(workspace: Path) -> None:
    root = workspace / "datasets" / "split"
    for side in ("train", "test"):
        for name in ("bart", "homer"):
            (root / side / name).mkdir(parents=True)
            (root / side / name / f"{name}.jpg").write_bytes(jpeg("red" if name == "bart" else "blue"))
    edit = editing.move_pictures(root, [root / "train/bart/bart.jpg", root / "test/bart/bart.jpg"], "homer")
    assert sorted(move.target.relative_to(root).as_posix() for move in edit.moves) == [
        "test/homer/bart.jpg",
        "train/homer/bart.jpg",
    ]
    with pytest.raises(ValueError, match="in homer already"):
        editing.move_pictures(root, ["train/homer/bart.jpg"], "homer")
    with pytest.raises(ValueError, match="has no class lisa"):
        editing.move_pictures(root, ["train/homer/bart.jpg"], "lisa")


def test_undo_restores_beside_a_path_that_is_taken_now_and_says_so(workspace: Path) -> None:
    folder = make_dataset(tabby=["red"], black=["black"])
    editing.move_pictures(folder, [folder / "tabby/red.jpg"], "black")
    (folder / "tabby/red.jpg").write_bytes(b"someone else's file")  # made outside the app meanwhile
    undone = editing.undo(folder)
    assert undone.state == "undone"
    assert undone.notes == ("tabby/red.jpg is taken now: restored as red-2.jpg beside it",)
    assert (folder / "tabby/red.jpg").read_bytes() == b"someone else's file"
    assert (folder / "tabby/red-2.jpg").read_bytes() == jpeg("red")
    assert not (folder / "black/red.jpg").exists()


def test_a_picture_gone_before_the_call_is_reported_and_the_rest_is_done_and_undoable(
    workspace: Path,
) -> None:
    folder = make_dataset(tabby=["red", "green", "blue"], black=["black"])
    (folder / "tabby/green.jpg").unlink()  # another tab removed it
    before = contents(folder)
    pictures = [folder / "tabby/red.jpg", folder / "tabby/green.jpg", folder / "tabby/blue.jpg"]
    with pytest.raises(EditIncomplete) as caught:
        editing.move_pictures(folder, pictures, "black")
    message = str(caught.value)
    assert message.startswith("2 pictures moved to black; 1 not done: tabby/green.jpg (no such file")
    assert message.endswith("Undo reverses what was done.")
    assert [move.source.name for move in caught.value.edit.moves] == ["red.jpg", "blue.jpg"]
    assert sorted(path.name for path in (folder / "black").iterdir()) == ["black.jpg", "blue.jpg", "red.jpg"]
    assert sorted(contents(folder).values()) == sorted(before.values())  # nothing lost, nothing doubled
    assert editing.history(folder)[-1] == caught.value.edit
    editing.undo(folder)
    assert contents(folder) == before
    edits = len(editing.history(folder))
    with pytest.raises(EditIncomplete, match="Nothing was changed"):
        editing.remove_pictures(folder, [folder / "tabby/green.jpg"])
    assert len(editing.history(folder)) == edits  # a call that did nothing records nothing


def test_a_move_that_fails_half_way_records_only_the_moves_made(workspace: Path) -> None:
    folder = make_dataset(tabby=["red", "blue"], black=["black"])
    (folder / "tabby/sub").mkdir()
    (folder / "tabby/sub/green.jpg").write_bytes(jpeg("green"))
    (folder / "black/sub").write_bytes(b"a file where the move needs a folder")
    before = contents(folder)
    pictures = [folder / "tabby/red.jpg", folder / "tabby/sub/green.jpg", folder / "tabby/blue.jpg"]
    with pytest.raises(EditIncomplete, match=r"tabby/sub/green.jpg \(File exists: black/sub\)"):
        editing.move_pictures(folder, pictures, "black")
    assert (folder / "tabby/sub/green.jpg").read_bytes() == jpeg("green")  # still where it was
    assert sorted(contents(folder).values()) == sorted(before.values())
    assert [move.source.name for move in editing.history(folder)[-1].moves] == ["red.jpg", "blue.jpg"]
    editing.undo(folder)
    assert contents(folder) == before


def test_pictures_outside_the_dataset_are_refused_before_anything_moves(
    workspace: Path, tmp_path: Path
) -> None:
    folder = make_dataset(tabby=["red"], black=["black"])
    stranger = tmp_path / "elsewhere.jpg"
    stranger.write_bytes(jpeg())
    before = contents(folder)
    for picture in (stranger, "../cats-other/x.jpg", folder):
        with pytest.raises(ValueError, match="not in the dataset"):
            editing.remove_pictures(folder, [folder / "tabby/red.jpg", picture])
    with pytest.raises(ValueError, match="is a folder"):
        editing.remove_pictures(folder, [folder / "tabby"])
    assert contents(folder) == before and stranger.exists()
    assert editing.history(folder)[-1].action == "add"


def test_a_users_own_folder_is_changed_only_after_consent_asked_once(workspace: Path, tmp_path: Path) -> None:
    own = tmp_path / "my photos"
    for name in ("bart", "homer"):
        (own / name).mkdir(parents=True)
        (own / name / "1.jpg").write_bytes(jpeg())
    assert editing.needs_consent(own)
    before = contents(own)
    for action in (
        lambda: editing.move_pictures(own, [own / "bart/1.jpg"], "homer"),
        lambda: editing.remove_pictures(own, [own / "bart/1.jpg"]),
        lambda: editing.rename_class(own, "bart", "bart_simpson"),
        lambda: editing.add_pictures(own, "bart", [("2.jpg", jpeg())]),
    ):
        with pytest.raises(editing.ConsentNeeded, match=r"never deleted.*pass --yes / confirm on the page"):
            action()
    assert contents(own) == before
    editing.grant_consent(own)
    assert not editing.needs_consent(own) and settings.edit_consent_given(own.resolve())
    edit = editing.remove_pictures(own, [own / "bart/1.jpg"])
    trash = editing.trash_folder(own)
    assert trash.parent == workspace / "trash" / "datasets" and trash.name.startswith("my-photos-")
    assert edit.moves[0].target.is_relative_to(trash)
    assert not editing.needs_consent(make_dataset(tabby=["red"]))  # the workspace's own datasets


def test_history_keeps_the_order_and_undo_goes_newest_first(workspace: Path) -> None:
    folder = make_dataset(tabby=["red", "green"], black=["black"])
    editing.move_pictures(folder, ["tabby/red.jpg"], "black")
    editing.rename_class(folder, "black", "black_cat")
    editing.remove_pictures(folder, ["black_cat/red.jpg"])
    assert [edit.describe() for edit in editing.history(folder)] == [
        "2 pictures added to tabby",
        "1 picture added to black",
        "1 picture moved to black",
        "class black renamed to black_cat",
        "1 picture removed (in the trash)",
    ]
    assert editing.next_undo(folder).describe() == "1 picture removed (in the trash)"
    order = [editing.undo(folder).describe() for _ in range(5)]
    assert order == [edit.describe() for edit in reversed(editing.history(folder))]
    assert editing.undo(folder) is None and editing.next_undo(folder) is None
    assert [edit.state for edit in editing.history(folder)] == ["undone"] * 5
    assert sorted(path.name for path in folder.iterdir()) == ["black", "tabby"]
    assert [record["type"] for record in journal_lines(folder)] == ["edit"] * 5 + ["undo"] * 5
    with (editing.trash_folder(folder) / "journal.jsonl").open("a") as journal:
        journal.write('{"type": "edit", "id": "cut short"}\nnot json\n{"type": "undo", "edit": 3}\n')
    assert len(editing.history(folder)) == 5  # damaged lines are skipped, the rest still reads


def test_renaming_a_class_renames_it_on_both_sides_and_its_name_labelled_test_files(
    tiny_dataset: Path, workspace: Path
) -> None:
    root = shutil.copytree(tiny_dataset, workspace / "datasets" / "tutorial")
    labelled = root / "simpson_testset" / "bart_simpson"
    for path in labelled.iterdir():  # as the Kaggle test set ships: loose files, labelled by name
        path.rename(root / "simpson_testset" / path.name)
    labelled.rmdir()
    before = contents(root)
    flat = sorted(path.name for path in (root / "simpson_testset").glob("bart_simpson*.jpg"))
    assert flat
    editing.rename_class(root, "bart_simpson", "bart")
    assert sorted(path.name for path in (root / "simpson_testset").glob("bart_*.jpg")) == [
        name.replace("bart_simpson", "bart") for name in flat
    ]
    layout = detect_layout(root)
    assert "bart" in layout.classes and "bart_simpson" not in layout.classes
    assert sum(item.label == "bart" for item in layout.test) == len(flat)  # still labelled by name
    with pytest.raises(ValueError, match="has a class homer_simpson already"):
        editing.rename_class(root, "bart", "homer_simpson")
    editing.undo(root)
    assert contents(root) == before


def test_removing_a_class_moves_all_its_pictures_to_the_trash(workspace: Path) -> None:
    folder = make_dataset(tabby=["red", "green"], black=["black"])
    edit = editing.remove_class(folder, "tabby")
    assert edit.describe() == "class tabby removed (2 pictures in the trash)"
    assert not (folder / "tabby").exists() and editing.trash_size(folder)[0] == 2
    editing.undo(folder)
    assert sorted(path.name for path in (folder / "tabby").iterdir()) == ["green.jpg", "red.jpg"]


def test_emptying_the_trash_deletes_only_the_trash_and_ends_the_undo_of_what_was_in_it(
    workspace: Path,
) -> None:
    folder = make_dataset(tabby=["red", "green", "blue"], black=["black"])
    editing.move_pictures(folder, ["tabby/blue.jpg"], "black")
    removed = editing.remove_pictures(folder, ["tabby/red.jpg", "tabby/green.jpg"])
    kept = contents(folder)
    assert [edit.id for edit in editing.expiring_edits(folder)] == [removed.id]
    assert editing.empty_trash(folder) == 2
    assert editing.trash_size(folder) == (0, 0) and contents(folder) == kept
    assert editing.history(folder)[-1].state == "expired"
    assert journal_lines(folder)[-1] | {"time": None} == {
        "type": "trash-emptied",
        "time": None,
        "edits": [removed.id],
        "files": 2,
    }
    assert editing.undo(folder).describe() == "1 picture moved to black"  # the expired removal is skipped
    assert (folder / "tabby/blue.jpg").exists()


def test_the_next_scan_sees_an_edit_and_decodes_only_the_moved_pictures(workspace: Path) -> None:
    folder = make_dataset(tabby=["red", "green", "blue"], black=["black", "white"])
    assert scan_dataset(folder).splits[0].counts == {"black": 2, "tabby": 3}
    editing.move_pictures(folder, ["tabby/red.jpg"], "black")
    editing.remove_pictures(folder, ["tabby/green.jpg"])
    report = scan_dataset(folder)
    assert report.splits[0].counts == {"black": 3, "tabby": 1}
    assert report.decoded == 1  # the moved picture, at its new path; the rest came from the cache


def test_the_scan_cache_is_not_fooled_by_another_file_moved_to_a_cached_path(workspace: Path) -> None:
    """Files unpacked from one archive share a modification time, and same-size BMPs share a size: only the
    inode tells the picture moved to `bart/x.bmp` from the one removed from there."""
    folder = editing.create_dataset("bitmaps", ["bart", "homer"])
    for name, colour in (("bart", "red"), ("homer", "blue")):
        Image.new("RGB", (20, 20), colour).save(folder / name / "x.bmp")
        os.utime(folder / name / "x.bmp", ns=(1_700_000_000_000_000_000,) * 2)
    red, blue = inspect_files(folder, [folder / "bart/x.bmp", folder / "homer/x.bmp"]).infos
    assert red.size == blue.size and red.digest != blue.digest
    editing.remove_pictures(folder, ["bart/x.bmp"])
    editing.move_pictures(folder, ["homer/x.bmp"], "bart")
    assert inspect_files(folder, [folder / "bart/x.bmp"]).infos[0].digest == blue.digest


def test_data_changed_since_compares_a_real_runs_counts_with_the_folder_now(
    trained_run: Path, tiny_dataset: Path, workspace: Path
) -> None:
    data = shutil.copytree(tiny_dataset, workspace / "datasets" / "tiny")
    run = shutil.copytree(trained_run, workspace / "runs" / "copied")
    config = json.loads((run / "config.json").read_text())
    recorded = config["dataset"]
    recorded["path"] = config["data_dir"] = str(data)
    (run / "config.json").write_text(json.dumps(config))
    assert config["validation"] == "split"  # the training folder's count is training plus validation
    homer = recorded["train_per_class"]["homer_simpson"] + recorded["validation_per_class"]["homer_simpson"]
    assert editing.data_changed_since(read_run(run)) is None

    editing.remove_pictures(data, sorted((data / "simpsons_trainset/homer_simpson").iterdir())[:3])
    editing.add_pictures(data, "maggie_simpson", [("1.jpg", jpeg()), ("2.jpg", jpeg("blue"))])
    assert editing.data_changed_since(read_run(run)) == (
        f"The data changed after this run: homer_simpson {homer} -> {homer - 3} pictures, "
        "1 class added (maggie_simpson)."
    )
    editing.undo(data)
    editing.undo(data)
    test_picture = sorted((data / "simpson_testset/homer_simpson").iterdir())[0]
    editing.remove_pictures(data, [test_picture])  # the test split is not what a "split" run trained on
    assert editing.data_changed_since(read_run(run)) is None
    editing.undo(data)
    editing.move_pictures(
        data, ["simpsons_trainset/bart_simpson/" + _first(data, "bart_simpson")], "lisa_simpson"
    )
    editing.move_pictures(
        data, ["simpsons_trainset/lisa_simpson/" + _first(data, "lisa_simpson")], "bart_simpson"
    )
    assert editing.data_changed_since(read_run(run)) == (
        "The data changed after this run: 2 edits since, with the same number of pictures per class."
    )
    shutil.rmtree(data)
    assert (
        editing.data_changed_since(read_run(run)) == f"The data this run trained on is no longer at {data}."
    )


def _first(data: Path, class_name: str) -> str:
    return sorted((data / "simpsons_trainset" / class_name).iterdir())[0].name


def test_removal_and_undo_work_when_the_trash_is_on_another_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's folder on one disk, the workspace on another (here /dev/shm, a memory disk): `os.rename`
    cannot cross them, so the file is copied under a temporary name, renamed, and only then removed."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system at /dev/shm")
    home = Path(tempfile.mkdtemp(dir=shm, prefix="simpsons-home-"))
    try:
        monkeypatch.setenv("SIMPSONS_HOME", str(home))
        own = tmp_path / "photos"
        for name in ("bart", "homer"):
            (own / name).mkdir(parents=True)
            (own / name / "1.jpg").write_bytes(jpeg("red" if name == "bart" else "blue"))
        before = contents(own)
        editing.grant_consent(own)
        edit = editing.remove_pictures(own, [own / "bart/1.jpg"])
        assert os.stat(edit.moves[0].target).st_dev != os.stat(own).st_dev
        assert not (own / "bart/1.jpg").exists() and editing.trash_size(own)[0] == 1
        assert not [path for path in edit.moves[0].target.parent.iterdir() if path.name.startswith(".")]
        editing.undo(own)
        assert contents(own) == before and editing.trash_size(own) == (0, 0)
    finally:
        shutil.rmtree(home)
