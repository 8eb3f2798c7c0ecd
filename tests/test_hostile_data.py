"""Hostile and clumsy dataset files: nothing hangs, nothing is read without bound, and a dataset that cannot
be trained on is refused before a run folder exists, with a message that says why (issue 18: 1, 2, 7, 9).

Every test is bounded: a named pipe that were opened would block forever, so a regression fails by timeout.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simpsons_core import paths
from simpsons_core.cli import main
from simpsons_core.config import TrainConfig
from simpsons_core.data.decoding import decode_images
from simpsons_core.data.folders import detect_layout
from simpsons_core.data.images import MAX_IMAGE_BYTES, ImageError, load_pixels
from simpsons_core.data.scan import scan_dataset
from simpsons_core.data.scan_cache import inspect_file
from simpsons_core.data.splits import check_trainable, split_for_training
from simpsons_core.run import launcher, lock

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]
needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="this OS has no /dev/zero")


def write_classes(folder: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """`counts[name]` distinct 40x40 JPEGs in `folder/name/` for each class."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{index}.jpg", quality=90)
    return folder


def run_folders() -> list[Path]:
    return [path for path in paths.runs_dir().glob("*") if path.is_dir()] if paths.runs_dir().exists() else []


@pytest.fixture
def with_pipe(tmp_path: Path) -> Path:
    """Two classes of four images; bart also holds a named pipe called pipe.jpg."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("this OS cannot make named pipes")
    root = write_classes(tmp_path / "data", {"bart": 4, "homer": 4})
    os.mkfifo(root / "bart" / "pipe.jpg")
    return root


# ---- 1. Only regular files are images ----


def test_scan_reports_a_named_pipe_and_finishes(
    workspace: Path, with_pipe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["scan", str(with_pipe)]) == 0
    out = capsys.readouterr().out
    assert "bart/pipe.jpg: The file is not a regular file (it is a named pipe)" in out
    assert "Images per class" in out


def test_a_split_and_decoding_skip_a_named_pipe_with_a_warning(workspace: Path, with_pipe: Path) -> None:
    layout = detect_layout(with_pipe)
    check_trainable(layout)  # four readable images a class: trainable
    train, validation = split_for_training(layout, TrainConfig(validation_fraction=0.25))
    with pytest.warns(UserWarning, match=r"pipe\.jpg is not a regular file \(it is a named pipe\)"):
        decoded = decode_images(train + validation, layout.classes, 32)
    assert len(decoded) == 8 and [path.name for path, _ in decoded.skipped] == ["pipe.jpg"]


@needs_dev_zero
def test_a_link_to_dev_zero_is_refused_without_being_read(tmp_path: Path) -> None:
    link = tmp_path / "x.jpg"
    link.symlink_to("/dev/zero")
    assert inspect_file(link).error == (
        "The file is not a regular file (it is a character device); only regular files are images."
    )
    with pytest.raises(ImageError, match="is not a regular file"):
        load_pixels(link, 32)


@pytest.mark.slow
@pytest.mark.timeout(300)  # imports TensorFlow and trains an epoch: seconds, a minute on a busy machine
@needs_dev_zero
def test_training_skips_a_named_pipe_and_a_device_and_finishes(workspace: Path, with_pipe: Path) -> None:
    (with_pipe / "homer" / "zero.jpg").symlink_to("/dev/zero")
    command = ["train", "--data", str(with_pipe), "--model", "compact", "--epochs", "1", "--img-size", "32"]
    done = subprocess.run(
        [sys.executable, "-m", "simpsons_core", *command, "--batch-size", "4"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pipe.jpg is not a regular file (it is a named pipe); only regular files are images" in done.stderr
    assert "zero.jpg is not a regular file (it is a character device)" in done.stderr
    assert " completed, " in done.stdout


def test_an_error_from_progress_stops_splitting_and_decoding(workspace: Path, tmp_path: Path) -> None:
    """The training process stops a data phase by raising from its progress callback (a cancel request)."""

    class Stop(Exception):
        pass

    calls: list[int] = []

    def stop_at_once(done: int, total: int) -> None:
        calls.append(done)
        raise Stop

    layout = detect_layout(write_classes(tmp_path / "data", {"bart": 6, "homer": 6}))
    with pytest.raises(Stop):
        split_for_training(layout, TrainConfig(), progress=stop_at_once)
    with pytest.raises(Stop):
        decode_images(layout.train, layout.classes, 32, progress=stop_at_once)
    assert calls == [1, 1]


# ---- 2. Bounded reads ----


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    with open(big, "wb") as handle:  # sparse: no disk space, no time
        handle.truncate(MAX_IMAGE_BYTES + 1)
    message = f"is 100 MB, more than the {MAX_IMAGE_BYTES // 1_000_000} MB limit per image"
    assert message in inspect_file(big).error
    with pytest.raises(ImageError, match=message):
        load_pixels(big, 32)


def test_the_content_hash_covers_the_whole_file(tmp_path: Path) -> None:
    """Hashed in chunks, a file longer than a chunk has the hash of all its bytes (duplicates rely on it)."""
    pixels = np.random.default_rng(1).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(pixels).save(path)
    data = path.read_bytes()
    assert len(data) > 1 << 20
    info = inspect_file(path)
    assert info.ok and info.digest == hashlib.blake2b(data, digest_size=16).hexdigest()


# ---- 7. Datasets that cannot be trained on: refused before a run starts, and listed by the scan ----


def unreadable_class(root: Path) -> None:
    write_classes(root, {"bart": 3, "homer": 3})
    (root / "lisa").mkdir()
    (root / "lisa" / "0.jpg").write_bytes(b"no picture")
    (root / "lisa" / "1.jpg").write_bytes(b"")


def empty_class(root: Path) -> None:
    write_classes(root, {"bart": 3, "homer": 3})
    (root / "lisa").mkdir()


def one_class_folder(root: Path) -> None:
    write_classes(root, {"bart_simpson": 3})


def one_class_train_test(root: Path) -> None:
    write_classes(root / "train", {"bart": 3})
    write_classes(root / "test", {"bart": 2}, seed=1)


def one_image(root: Path) -> None:
    write_classes(root, {"bart": 3, "homer": 1})


UNTRAINABLE = [
    (
        unreadable_class,
        "unreadable-class",
        "class lisa has no readable image (none of its 2 files can be used)",
    ),
    (empty_class, "empty-class", "class folder lisa/ of the train split has no images"),
    (
        one_class_folder,
        "one-class",
        "the dataset holds only one class (bart_simpson); a classifier needs at least two",
    ),
    (
        one_class_train_test,
        "one-class",
        "train/ holds only one class (bart); a classifier needs at least two",
    ),
    (one_image, "few-images", "class homer has only 1 readable image; a class needs at least 2"),
]
IDS = ["all-unreadable", "empty-class", "one-class-folder", "one-class-train-test", "one-image"]


@pytest.mark.parametrize(("make", "kind", "message"), UNTRAINABLE, ids=IDS)
def test_the_scan_lists_what_stops_training(workspace: Path, tmp_path: Path, make, kind, message) -> None:
    make(tmp_path / "data")
    report = scan_dataset(tmp_path / "data")
    assert any(p.kind == kind and message in p.message for p in report.problems), report.to_text()


@pytest.mark.parametrize(("make", "kind", "message"), UNTRAINABLE, ids=IDS)
def test_a_run_is_refused_before_it_has_a_folder(
    workspace: Path, tmp_path: Path, make, kind, message
) -> None:
    make(tmp_path / "data")
    with pytest.raises(ValueError, match="cannot be trained on: .*" + re.escape(message)):
        launcher.start_run(TrainConfig(data_dir=str(tmp_path / "data")))
    assert run_folders() == [] and lock.lock_holder() is None


@pytest.mark.parametrize(("make", "kind", "message"), UNTRAINABLE, ids=IDS)
def test_the_cli_refuses_in_one_line_without_a_run_folder(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], make, kind, message
) -> None:
    make(tmp_path / "data")
    for detach in ([], ["--detach"]):
        assert main.main(["train", "--data", str(tmp_path / "data"), *detach]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert run_folders() == []


def test_a_trainable_folder_passes(workspace: Path, tmp_path: Path) -> None:
    check_trainable(detect_layout(write_classes(tmp_path / "data", {"bart": 2, "homer": 2})))


# ---- 9. Messages ----


def test_a_zero_byte_jpg_says_it_is_empty(workspace: Path, tmp_path: Path) -> None:
    root = write_classes(tmp_path / "data", {"bart": 2, "homer": 2})
    empty = root / "bart" / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg is empty \(0 bytes\)"):
        load_pixels(empty, 32)
    layout = detect_layout(root)
    with pytest.warns(UserWarning, match=r"empty\.jpg is empty \(0 bytes\)"):
        decode_images(layout.train, layout.classes, 32)


def test_data_pointing_at_a_file_says_it_is_a_file(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "data.zip"
    file.write_bytes(b"PK")
    for command in (["train", "--data", str(file)], ["scan", str(file)]):
        assert main.main(command) == 2
        assert f"{file} is not a folder: it is a file." in capsys.readouterr().err
    assert main.main(["train", "--data", str(tmp_path / "gone")]) == 2
    assert "is not a folder: it does not exist." in capsys.readouterr().err


def test_train_on_an_empty_folder_says_so_in_one_line(workspace: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "simpsons_core", "train", "--data", str(empty)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"error: No labelled images found in {empty}: the folder is empty. Expected"
    )
    assert done.stderr.count("\n") == 1  # one line: no traceback
    assert run_folders() == []


def test_a_folder_of_loose_images_is_named_as_such(tmp_path: Path) -> None:
    root = tmp_path / "bart_simpson"
    write_classes(tmp_path, {"bart_simpson": 2})
    with pytest.raises(ValueError, match="the folder holds images but no class folders"):
        detect_layout(root)
