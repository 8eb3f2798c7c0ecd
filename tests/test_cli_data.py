"""`simpsons data ...`: the dataset editing actions from a terminal, a line each, errors without traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from simpsons_core import paths
from simpsons_core.cli.main import main


def picture(path: Path, colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), colour).save(path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["data", *argv])
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_make_fill_fix_and_undo_a_dataset_from_the_terminal(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = paths.datasets_dir() / "cats"
    assert run(capsys, "create", "cats", "--classes", "tabby,black") == (
        0,
        f"Created dataset cats in {folder} with classes black, tabby.",
        "",
    )
    red, blue = picture(tmp_path / "red.jpg"), picture(tmp_path / "blue.jpg", "blue")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as archive:
        archive.write(picture(tmp_path / "zipped" / "green.jpg", "green"), "holiday/green.jpg")
    code, out, err = run(
        capsys, "add", "cats", "tabby", str(red), str(blue), str(notes), str(tmp_path / "more.zip")
    )
    assert code == 0
    assert out == f"3 pictures added to tabby in {folder} (undo: simpsons data undo cats)."
    assert err.startswith("skipped notes.txt: The file is not a picture")

    assert run(capsys, "move", "cats", "tabby/red.jpg", "--to", "black")[1] == (
        "1 picture moved to black (undo: simpsons data undo cats)."
    )
    assert (folder / "black/red.jpg").read_bytes() == red.read_bytes()
    assert run(capsys, "remove", "cats", str(folder / "tabby/blue.jpg"))[1] == (
        "1 picture removed (in the trash) (undo: simpsons data undo cats)."
    )
    trash = paths.trash_dir() / "datasets" / "cats"
    assert [path.read_bytes() for path in trash.rglob("blue.jpg")] == [blue.read_bytes()]
    code, out, _ = run(capsys, "trash", "cats")
    assert out.startswith(f"The trash of {folder} holds 1 file (") and out.endswith(f"MB) in {trash}.")

    code, out, _ = run(capsys, "history", "cats")
    lines = out.splitlines()
    assert [line.split(maxsplit=3)[2:] for line in lines] == [
        ["done", "3 pictures added to tabby"],
        ["done", "1 picture moved to black"],
        ["done", "1 picture removed (in the trash)"],
    ]
    assert run(capsys, "undo", "cats")[1] == "Undone: 1 picture removed (in the trash)."
    assert (folder / "tabby/blue.jpg").read_bytes() == blue.read_bytes()
    assert run(capsys, "rename", "cats", "black", "black_cat")[1] == (
        f"Class black renamed to black_cat in {folder} (undo: simpsons data undo cats)."
    )
    assert (folder / "black_cat/red.jpg").is_file()

    run(capsys, "remove", "cats", "tabby/blue.jpg")
    code, out, _ = run(capsys, "trash", "cats", "--empty")
    assert out.startswith("Deleted 1 file (") and out.endswith(
        f"from the trash of {folder}; these can no longer be undone: 1 picture removed (in the trash)."
    )
    assert not list(trash.rglob("blue.jpg")) and (folder / "tabby/green.jpg").is_file()
    assert run(capsys, "undo", "cats")[1] == "Undone: class black renamed to black_cat."


def test_a_users_own_folder_is_changed_only_with_yes_asked_once(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "photos"
    picture(own / "bart/1.jpg")
    picture(own / "homer/1.jpg", "blue")
    code, _, err = run(capsys, "move", str(own), "bart/1.jpg", "--to", "homer")
    assert code == 2 and err.startswith(f"error: {own} is your own folder") and "pass --yes" in err
    assert (own / "bart/1.jpg").is_file()
    code, out, _ = run(capsys, "move", str(own), "bart/1.jpg", "--to", "homer", "--yes")
    assert code == 0 and out.splitlines() == [
        f"Noted: files in {own} may be moved (never deleted); you will not be asked again.",
        f"1 picture moved to homer (undo: simpsons data undo {own}).",
    ]
    assert run(capsys, "undo", str(own))[0] == 0
    assert run(capsys, "remove", str(own), "homer/1.jpg")[0] == 0  # asked once: no --yes needed again


def test_mistakes_are_one_line_errors_and_change_nothing(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "create", "cats", "--classes", "tabby,black")
    folder = paths.datasets_dir() / "cats"
    picture(folder / "tabby/1.jpg")
    picture(folder / "tabby/2.jpg", "blue")
    outside = picture(tmp_path / "outside.jpg")
    for argv, message in [
        (("history", "dogs"), "error: dogs is neither a folder nor a dataset in"),
        (("move", "cats", "tabby/1.jpg", "--to", "ginger"), "has no class ginger (classes: black, tabby)"),
        (("remove", "cats", str(outside)), "is not in the dataset"),
        (("create", "cats"), "A dataset named cats exists already"),
        (("add", "cats", "tabby", str(tmp_path / "missing.jpg")), "No picture was added to tabby"),
        (
            ("move", "cats", "tabby/3.jpg", "tabby/1.jpg", "--to", "black"),
            "1 not done: tabby/3.jpg (no such file",
        ),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err and "Traceback" not in err, (argv, err)
    assert sorted(path.name for path in (folder / "black").iterdir()) == ["1.jpg"]  # the one that could move
    assert outside.is_file()


def test_python_dash_m_simpsons_core_runs_the_data_commands(workspace: Path) -> None:
    environment = os.environ | {"SIMPSONS_HOME": str(workspace)}
    command = [sys.executable, "-m", "simpsons_core", "data", "create", "birds", "--classes", "owl,crow"]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Created dataset birds in ")
    result = subprocess.run(
        [*command[:4], "history", "birds"], capture_output=True, text=True, env=environment, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"No edits of {workspace / 'datasets' / 'birds'} yet.\n")
