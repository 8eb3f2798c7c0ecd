"""Unpacking an uploaded .zip of class folders into the workspace, safely.

A zip is untrusted input: a member named `../../x` or `/etc/x` (zip-slip), a symbolic link, millions of
entries, or a few kilobytes that inflate to gigabytes must not write outside the target folder, fill the
disk or the server's memory. Only image files are unpacked; everything else is skipped and listed so the
user sees what was left out.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import struct
import tempfile
import time
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from simpsons_core import paths
from simpsons_core.data.images import is_image_name
from simpsons_core.run.process import process_alive

MAX_TOTAL_BYTES = 2 * 1024**3
MAX_FILES = 50_000
# An image over RATIO_CHECKED_ABOVE_BYTES that inflates more than MAX_COMPRESSION_RATIO times refuses the zip
# as a bomb: photos and PNGs barely compress, and a smaller entry cannot fill a disk whatever its ratio.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECKED_ABOVE_BYTES = 1024**2
# A staging folder this old belongs to no running import (the largest allowed zip unpacks in minutes).
STALE_STAGING_SECONDS = 3600
_ENCRYPTED = "it is encrypted (password-protected zips are not supported)"
_COPY_CHUNK = 1024 * 1024
# Staging folders are `.<target>.pid<pid>.<random>`; older versions wrote `.<target>.<random>`.
_STAGING_NAME = re.compile(r"\.[\w-]+\.(?:pid(?P<pid>\d+)\.)?\w{8}")

# The records at the end of a zip (APPNOTE.TXT 4.3.12-4.3.16), enough to count entries without `zipfile`.
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_HEADER_SIZE = 46
_MAX_COMMENT = 0xFFFF

_Entry = tuple[zipfile.ZipInfo, PurePosixPath]


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        root: the dataset folder to use (the zip's single top folder when it has one).
        images: number of image files unpacked.
        skipped: members left out, each with the reason.
    """

    root: Path
    images: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"Unpacked {self.images} images into {self.root}."
        if self.skipped:
            text += f" Skipped {len(self.skipped)} file(s) that are not images or not safe to unpack."
        return text


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it would land outside the target folder."""
    parts = PurePosixPath(name.replace("\\", "/"))
    if parts.is_absolute() or not parts.parts:
        return None
    if any(part in ("..", "") or ":" in part for part in parts.parts):
        return None
    return parts


def _skip_reason(info: zipfile.ZipInfo, relative: PurePosixPath | None) -> str | None:
    if relative is None:
        return "its path points outside the dataset folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "it is a symbolic link"
    if info.flag_bits & 0x1:
        return _ENCRYPTED
    if any(part.startswith(".") or part == "__MACOSX" for part in relative.parts):
        return "hidden or system file"
    if not is_image_name(relative.name):
        return "not an image file"
    return None


def _central_directory(file: BinaryIO) -> tuple[int, int, int]:
    """(entries, start, size) of the zip's central directory, from the records at the end of the file.

    Reads at most the last 64 KB (the end record may carry a comment that long), whatever the entry count.
    The ZIP64 record, present when there are more than 65,535 entries, replaces the end record's 16-bit count.
    As in `zipfile`, the directory ends where those records begin, so data prepended to a zip does not matter.
    """
    end = file.seek(0, os.SEEK_END)
    tail_start = max(0, end - _ZIP64_END_RECORD.size - _ZIP64_LOCATOR.size - _END_RECORD.size - _MAX_COMMENT)
    file.seek(tail_start)
    tail = file.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _END_RECORD.size > len(tail):
        raise zipfile.BadZipFile("no end of central directory record")
    fields = _END_RECORD.unpack_from(tail, at)
    entries, size = fields[4], fields[5]
    locator = at - _ZIP64_LOCATOR.size
    record = locator - _ZIP64_END_RECORD.size
    if record >= 0 and tail.startswith(b"PK\x06\x07", locator) and tail.startswith(b"PK\x06\x06", record):
        fields = _ZIP64_END_RECORD.unpack_from(tail, record)
        entries, size, at = fields[7], fields[8], record
    start = tail_start + at - size
    if start < 0:
        raise zipfile.BadZipFile("the central directory would start before the file")
    return entries, start, size


def _count_headers(file: BinaryIO, start: int, size: int, stop_at: int) -> int:
    """Central directory headers in `size` bytes from `start`, counted up to `stop_at`; names are not read."""
    count, position = 0, start
    while position < start + size and count < stop_at:
        file.seek(position)
        header = file.read(_CENTRAL_HEADER_SIZE)
        if len(header) < _CENTRAL_HEADER_SIZE or not header.startswith(b"PK\x01\x02"):
            raise zipfile.BadZipFile("a damaged central directory")
        name_length, extra_length, comment_length = struct.unpack_from("<3H", header, 28)
        position += _CENTRAL_HEADER_SIZE + name_length + extra_length + comment_length
        count += 1
    return count


def _check_entry_count(file: BinaryIO, name: str, max_files: int) -> None:
    """Refuse a zip with more than `max_files` entries before `zipfile` builds an object for each of them.

    Two million entries cost `zipfile` seconds and a gigabyte; the count in the end record costs a few reads.
    That count can lie while `zipfile` parses the whole directory regardless, so the directory's headers are
    also walked, stopping one past the count.
    """
    declared, start, size = _central_directory(file)
    if declared > max_files:
        raise ValueError(f"{name} holds {declared:,} entries, more than the limit of {max_files:,}.")
    if _count_headers(file, start, size, declared + 1) > declared:
        raise zipfile.BadZipFile("its central directory holds more entries than its end record declares")


def _remove_stale_staging(folder: Path) -> None:
    """Remove staging folders left by imports that died (`kill -9`, a crash): each can hold gigabytes.

    A staging folder is stale when the process its name records is gone, or when it is older than any import
    takes (a reused pid, or a name from before names recorded the pid). A live import's folder is left alone.
    """
    now = time.time()
    for entry in folder.iterdir():
        match = _STAGING_NAME.fullmatch(entry.name)
        if not match or not entry.is_dir():
            continue
        owner_gone = match["pid"] is not None and not process_alive({"pid": int(match["pid"])})
        with contextlib.suppress(OSError):
            if owner_gone or now - entry.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(entry)


def _disk_limit(folder: Path, setting: str, default: int) -> int:
    """A limit of the disk holding `folder` (`os.pathconf`), or the usual value where it cannot be asked."""
    try:
        value = os.pathconf(folder, setting)
    except (AttributeError, OSError, ValueError):
        return default
    return value if value > 0 else default


def _comparable(relative: PurePosixPath) -> tuple[str, ...]:
    """The path as a case-insensitive disk (Windows, macOS) sees it: `A/x.jpg` and `a/x.jpg` are one file."""
    return tuple(unicodedata.normalize("NFC", part).casefold() for part in relative.parts)


def _plan(wanted: list[_Entry], staging: Path) -> tuple[list[_Entry], list[tuple[str, str]]]:
    """The entries that can be written side by side under `staging`, and why each of the others cannot.

    Two entries can map to one path (the same name twice, names that differ only in case, a file and a folder
    of the same name) and a name can be longer than the disk allows; each such entry is skipped with a reason
    rather than failing the whole import with an OS error. The first entry of a clash is kept, on every disk.
    """
    name_max = _disk_limit(staging, "PC_NAME_MAX", 255)
    path_max = _disk_limit(staging, "PC_PATH_MAX", 4096)
    files: dict[tuple[str, ...], str] = {}
    folders: dict[tuple[str, ...], str] = {}
    kept: list[_Entry] = []
    skipped: list[tuple[str, str]] = []
    for info, relative in wanted:
        key = _comparable(relative)
        parents = [key[:depth] for depth in range(1, len(key))]
        longest = max(len(os.fsencode(part)) for part in relative.parts)
        length = len(os.fsencode(staging.joinpath(*relative.parts)))
        file_parent = next((parent for parent in parents if parent in files), None)
        if longest > name_max:
            reason = f"a name in its path is {longest} bytes long, more than the {name_max} the disk allows"
        elif length >= path_max:
            reason = f"its unpacked path would be {length} bytes long, more than the {path_max - 1} allowed"
        elif key in files:
            reason = f"it has the same path as {files[key]}, letter case aside (as Windows and macOS see it)"
        elif key in folders:
            reason = f"{folders[key]} needs a folder of the same name"
        elif file_parent is not None:
            reason = f"it needs a folder where {files[file_parent]} is a file"
        else:
            files[key] = info.filename
            for parent in parents:
                folders.setdefault(parent, info.filename)
            kept.append((info, relative))
            continue
        skipped.append((info.filename, reason))
    return kept, skipped


def _left_out(skipped: list[tuple[str, str]], shown: int = 3) -> str:
    """A few skipped entries and their reasons, for an error message (which has no table to list them all)."""
    if not skipped:
        return ""
    text = "; left out: " + "; ".join(f"{name} ({reason})" for name, reason in skipped[:shown])
    return text + (f"; and {len(skipped) - shown:,} more" if len(skipped) > shown else "")


def _check_unpackable(name: str, kept: list[_Entry], skipped: list[tuple[str, str]], max_bytes: int) -> None:
    """Refuse, before writing anything, a zip with nothing to unpack, a zip bomb, or one too large."""
    if not kept:
        if any(reason == _ENCRYPTED for _, reason in skipped):
            raise ValueError(f"{name} is encrypted: password-protected zips are not supported.")
        raise ValueError(
            f"{name} contains no images (jpg, png, webp, bmp, gif, tif) that can be unpacked"
            f"{_left_out(skipped)}."
        )
    for info, _ in kept:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_CHECKED_ABOVE_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise ValueError(
                f"{name}: {info.filename} inflates {ratio:,.0f} times ({info.compress_size:,} bytes to "
                f"{info.file_size:,}), more than the limit of {MAX_COMPRESSION_RATIO}: a zip bomb?"
            )
    declared = sum(info.file_size for info, _ in kept)
    if declared > max_bytes:
        raise ValueError(
            f"{name} unpacks to {declared / 1e6:.0f} MB, more than the limit of {max_bytes / 1e6:.0f} MB."
        )


def _folder_name(upload_name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(upload_name).stem).strip("-") or "dataset"
    candidate, number = stem, 2
    while (paths.datasets_dir() / candidate).exists():
        candidate, number = f"{stem}-{number}", number + 1
    return candidate


def _copy_limited(source: BinaryIO, target: Path, budget: int) -> int:
    """Copy at most `budget` bytes; ValueError beyond it (a zip may lie about sizes)."""
    written = 0
    with target.open("wb") as out:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > budget:
                raise ValueError("The zip unpacks to more than the size limit.")
            out.write(chunk)
    return written


def _dataset_root(folder: Path) -> Path:
    """Zips often wrap everything in one top folder; the dataset starts inside it."""
    entries = list(folder.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return _dataset_root(entries[0])
    return folder


def _unpack(archive: zipfile.ZipFile, name: str, max_bytes: int) -> ImportReport:
    """Write the archive's images into a staging folder named after this process, then rename it into place:
    an import is either complete or absent, and one that dies leaves a folder the next import recognises."""
    wanted: list[_Entry] = []
    skipped: list[tuple[str, str]] = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        relative = _safe_member_path(info.filename)
        reason = _skip_reason(info, relative)
        if reason:
            skipped.append((info.filename, reason))
        else:
            wanted.append((info, relative))
    target = paths.datasets_dir() / _folder_name(name)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.pid{os.getpid()}."))
    try:
        kept, clashes = _plan(wanted, staging)
        skipped += clashes
        _check_unpackable(name, kept, skipped, max_bytes)
        budget = max_bytes
        for info, relative in kept:
            destination = staging.joinpath(*relative.parts)
            if not destination.resolve().is_relative_to(staging.resolve()):
                raise ValueError(f"{info.filename} would escape the dataset folder.")
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as member:
                budget -= _copy_limited(member, destination, budget)
        staging.rename(target)
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ValueError(f"{name} is damaged and could not be unpacked: {error}.") from error
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ValueError(
            f"{name} could not be unpacked into {target.parent}: {error.strerror or error}."
        ) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportReport(root=_dataset_root(target), images=len(kept), skipped=skipped)


def import_zip(
    source: str | Path | BinaryIO,
    name: str,
    max_bytes: int = MAX_TOTAL_BYTES,
    max_files: int = MAX_FILES,
) -> ImportReport:
    """Unpack the images of a zip of class folders into a new folder under `paths.datasets_dir()`.

    Args:
        source: the zip as a path or a binary file object (a Streamlit upload works as is).
        name: the uploaded file's name; the new folder is named after it.
        max_bytes: refuse a zip whose images unpack to more than this.
        max_files: refuse a zip with more entries (files and folders) than this.

    Returns:
        An `ImportReport`; ValueError, with a message for the user, when nothing usable can be unpacked.
    """
    _remove_stale_staging(paths.datasets_dir())
    with contextlib.ExitStack() as stack:
        try:
            file = stack.enter_context(Path(source).open("rb")) if isinstance(source, (str, Path)) else source
            _check_entry_count(file, name, max_files)
            archive = stack.enter_context(zipfile.ZipFile(file))
        except (zipfile.BadZipFile, OSError) as error:
            raise ValueError(f"{name} is not a readable .zip file.") from error
        return _unpack(archive, name, max_bytes)
