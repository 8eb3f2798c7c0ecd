"""Unpacking an uploaded zip: images land in the workspace, nothing escapes it, limits hold."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from simpsons_core import paths
from simpsons_core.data.zip_import import import_zip


def png_bytes(colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    buffer.seek(0)
    return buffer


def test_unpacks_class_folders_and_unwraps_the_top_folder(workspace: Path) -> None:
    archive = make_zip(
        {"mine/bart/1.png": png_bytes(), "mine/bart/2.png": png_bytes(), "mine/lisa/1.png": png_bytes("blue")}
    )
    report = import_zip(archive, "My Data.zip")
    assert report.root == paths.datasets_dir() / "My-Data" / "mine"
    assert sorted(p.relative_to(report.root).as_posix() for p in report.root.rglob("*.png")) == [
        "bart/1.png",
        "bart/2.png",
        "lisa/1.png",
    ]
    assert report.images == 3 and report.skipped == []
    assert "3 images" in report.summary()


def test_skips_and_lists_non_images_hidden_files_and_escaping_members(workspace: Path) -> None:
    archive = make_zip(
        {
            "bart/1.png": png_bytes(),
            "bart/notes.txt": b"hello",
            "__MACOSX/bart/._1.png": b"junk",
            "../evil.png": png_bytes(),
            "/abs/evil.png": png_bytes(),
            "..\\win\\evil.png": png_bytes(),
            "c:/drive/evil.png": png_bytes(),
        },
        symlinks={"bart/link.png": "/etc/passwd"},
    )
    report = import_zip(archive, "data.zip")
    reasons = dict(report.skipped)
    assert reasons["bart/notes.txt"] == "not an image file"
    assert reasons["__MACOSX/bart/._1.png"] == "hidden or system file"
    for name in ("../evil.png", "/abs/evil.png", "..\\win\\evil.png", "c:/drive/evil.png"):
        assert reasons[name] == "its path points outside the dataset folder"
    assert reasons["bart/link.png"] == "it is a symbolic link"
    assert report.images == 1
    assert [p.name for p in report.root.rglob("*") if p.is_file()] == ["1.png"]
    assert not list(workspace.parent.glob("evil.png")) and not (workspace / "evil.png").exists()


def test_limits_on_size_and_file_count_refuse_the_zip_and_leave_nothing(workspace: Path) -> None:
    entries = {f"bart/{i}.png": png_bytes() for i in range(5)}
    with pytest.raises(ValueError, match="more than the limit of 3"):
        import_zip(make_zip(entries), "many.zip", max_files=3)
    big = {"bart/big.png": b"\0" * 10_000}
    with pytest.raises(ValueError, match="MB, more than the limit"):
        import_zip(make_zip(big), "big.zip", max_bytes=5_000)
    assert list(paths.datasets_dir().iterdir()) == []


def test_a_zip_with_no_images_or_a_non_zip_is_refused_with_a_message(workspace: Path) -> None:
    with pytest.raises(ValueError, match="contains no images"):
        import_zip(make_zip({"readme.txt": b"x"}), "empty.zip")
    with pytest.raises(ValueError, match=r"not a readable \.zip file"):
        import_zip(io.BytesIO(b"not a zip at all"), "fake.zip")


def test_two_uploads_with_the_same_name_get_separate_folders(workspace: Path) -> None:
    first = import_zip(make_zip({"bart/1.png": png_bytes()}), "set.zip")
    second = import_zip(make_zip({"bart/1.png": png_bytes()}), "set.zip")
    assert first.root != second.root and first.root.exists() and second.root.exists()
