"""Unpacking an uploaded zip: images land in the workspace, nothing escapes it, limits hold."""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from simpsons_core import paths
from simpsons_core.data.zip_import import MAX_COMPRESSION_RATIO, MAX_FILES, import_zip


def png_bytes(colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(
    entries: dict[str, bytes],
    symlinks: dict[str, str] | None = None,
    encrypted: tuple[str, ...] = (),
    compression: int = zipfile.ZIP_STORED,
) -> io.BytesIO:
    """A zip in memory; names in `encrypted` get the encryption flag, as a password-protected zip has."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
            if name in encrypted:
                archive.getinfo(name).flag_bits |= 0x1  # written to the central directory on close
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
    with pytest.raises(ValueError, match="holds 5 entries, more than the limit of 3"):
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


def test_a_zip_with_too_many_entries_is_refused_from_its_end_record_without_parsing_its_directory(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70,000 entries need the ZIP64 end record: the 16-bit count in the classic one stops at 65,535."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(70_000):
            archive.writestr(f"bart/{index}.png", b"")
    monkeypatch.setattr(zipfile, "ZipFile", lambda *args, **kwargs: pytest.fail("the directory was parsed"))
    started = time.perf_counter()
    with pytest.raises(
        ValueError, match=f"many.zip holds 70,000 entries, more than the limit of {MAX_FILES:,}"
    ):
        import_zip(buffer, "many.zip")
    assert time.perf_counter() - started < 1.0
    assert list(paths.datasets_dir().iterdir()) == []


def test_an_end_record_that_understates_the_entries_is_refused(workspace: Path) -> None:
    data = bytearray(make_zip({f"bart/{i}.png": png_bytes() for i in range(5)}).getvalue())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<2H", data, end + 8, 2, 2)  # entries on this disk, entries in total
    with pytest.raises(ValueError, match=r"liar.zip is not a readable \.zip file"):
        import_zip(io.BytesIO(bytes(data)), "liar.zip", max_files=3)


def test_a_zip_bomb_entry_is_refused_naming_the_entry_and_its_ratio(workspace: Path) -> None:
    bomb = make_zip(
        {"bart/1.png": png_bytes(), "bart/bomb.bmp": bytes(4 * 1024**2)}, compression=zipfile.ZIP_DEFLATED
    )
    info = zipfile.ZipFile(bomb).getinfo("bart/bomb.bmp")
    ratio = info.file_size / info.compress_size
    assert ratio > MAX_COMPRESSION_RATIO
    expected = (
        f"bomb.zip: bart/bomb.bmp inflates {ratio:,.0f} times ({info.compress_size:,} bytes to 4,194,304), "
        f"more than the limit of {MAX_COMPRESSION_RATIO}"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        import_zip(bomb, "bomb.zip")
    assert list(paths.datasets_dir().iterdir()) == []
    # Below a megabyte no ratio can fill a disk: a small blank bitmap is an image like any other.
    blank = make_zip({"bart/blank.bmp": bytes(100_000)}, compression=zipfile.ZIP_DEFLATED)
    assert import_zip(blank, "blank.zip").images == 1


def test_staging_folders_of_dead_imports_are_removed_by_the_next_import_and_live_ones_kept(
    workspace: Path,
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    datasets = paths.datasets_dir()
    dead = datasets / f".big.pid{child.pid}.abcd1234"
    live = datasets / f".other.pid{os.getpid()}.efgh5678"
    ancient = datasets / ".old.ijkl9012"  # named before staging names carried a pid, and two hours old
    for folder in (dead, live, ancient):
        (folder / "bart").mkdir(parents=True)
        (folder / "bart" / "1.png").write_bytes(png_bytes())
    os.utime(ancient, (time.time() - 7200, time.time() - 7200))
    import_zip(make_zip({"bart/1.png": png_bytes()}), "next.zip")
    assert not dead.exists() and not ancient.exists()
    assert (live / "bart" / "1.png").is_file()
    assert sorted(path.name for path in datasets.iterdir()) == [live.name, "next"]


def test_an_encrypted_zip_says_it_is_encrypted(workspace: Path) -> None:
    with pytest.raises(
        ValueError, match=r"secret\.zip is encrypted: password-protected zips are not supported"
    ):
        import_zip(make_zip({"bart/1.png": png_bytes()}, encrypted=("bart/1.png",)), "secret.zip")
    mixed = make_zip({"bart/1.png": png_bytes(), "bart/2.png": png_bytes()}, encrypted=("bart/2.png",))
    report = import_zip(mixed, "mixed.zip")
    assert report.images == 1
    assert report.skipped == [("bart/2.png", "it is encrypted (password-protected zips are not supported)")]


def test_entries_that_clash_or_whose_names_are_too_long_are_skipped_each_with_its_reason(
    workspace: Path,
) -> None:
    long_name = f"bart/{'x' * 300}.png"
    deep_name = "deep/" + "/".join(["d" * 250] * 17) + "/1.png"
    archive = make_zip(
        {
            "bart/1.png": png_bytes(),
            "BART/1.png": png_bytes(),
            "bart\\1.png": png_bytes(),
            "bart/1.png/2.png": png_bytes(),
            "lisa/a.png/1.png": png_bytes(),
            "lisa/a.png": png_bytes(),
            long_name: png_bytes(),
            deep_name: png_bytes(),
        }
    )
    report = import_zip(archive, "clash.zip")
    reasons = dict(report.skipped)
    assert (
        reasons["BART/1.png"]
        == "it has the same path as bart/1.png, letter case aside (as Windows and macOS see it)"
    )
    assert reasons["bart\\1.png"] == reasons["BART/1.png"]
    assert reasons["bart/1.png/2.png"] == "it needs a folder where bart/1.png is a file"
    assert reasons["lisa/a.png"] == "lisa/a.png/1.png needs a folder of the same name"
    assert reasons[long_name] == "a name in its path is 304 bytes long, more than the 255 the disk allows"
    assert re.fullmatch(
        r"its unpacked path would be \d+ bytes long, more than the 4095 allowed", reasons[deep_name]
    )
    assert report.images == 2 and len(report.skipped) == 6
    unpacked = sorted(p.relative_to(report.root).as_posix() for p in report.root.rglob("*") if p.is_file())
    assert unpacked == ["bart/1.png", "lisa/a.png/1.png"]


def test_a_zip_whose_only_image_cannot_be_unpacked_says_why(workspace: Path) -> None:
    with pytest.raises(
        ValueError, match=r"no images .* that can be unpacked; left out: bart/x+\.png \(a name in its"
    ):
        import_zip(make_zip({f"bart/{'x' * 300}.png": png_bytes()}), "long.zip")
