"""Unpacking an uploaded .zip of class folders into the workspace, safely.

A zip is untrusted input: a member named `../../x` or `/etc/x` (zip-slip), a symbolic link, or a few kilobytes
that inflate to gigabytes must not write outside the target folder or fill the disk. Only image files are
unpacked; everything else is skipped and listed so the user sees what was left out.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from simpsons_core import paths
from simpsons_core.data.images import is_image_name

MAX_TOTAL_BYTES = 2 * 1024**3
MAX_FILES = 50_000
_COPY_CHUNK = 1024 * 1024


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
        return "it is encrypted"
    if any(part.startswith(".") or part == "__MACOSX" for part in relative.parts):
        return "hidden or system file"
    if not is_image_name(relative.name):
        return "not an image file"
    return None


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
        max_files: refuse a zip with more members than this.

    Returns:
        An `ImportReport`; ValueError, with a message for the user, when nothing usable can be unpacked.
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{name} is not a readable .zip file.") from error
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > max_files:
            raise ValueError(f"{name} holds {len(members)} files, more than the limit of {max_files}.")
        wanted, skipped = [], []
        for info in members:
            relative = _safe_member_path(info.filename)
            reason = _skip_reason(info, relative)
            if reason:
                skipped.append((info.filename, reason))
            else:
                wanted.append((info, relative))
        if not wanted:
            raise ValueError(f"{name} contains no images (jpg, png, webp, bmp, gif, tif) to unpack.")
        declared = sum(info.file_size for info, _ in wanted)
        if declared > max_bytes:
            raise ValueError(
                f"{name} unpacks to {declared / 1e6:.0f} MB, more than the limit of {max_bytes / 1e6:.0f} MB."
            )
        target = paths.datasets_dir() / _folder_name(name)
        staging = Path(tempfile.mkdtemp(dir=paths.datasets_dir(), prefix=f".{target.name}."))
        try:
            budget = max_bytes
            for info, relative in wanted:
                destination = staging.joinpath(*relative.parts)
                if not destination.resolve().is_relative_to(staging.resolve()):
                    raise ValueError(f"{info.filename} would escape the dataset folder.")
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as member:
                    budget -= _copy_limited(member, destination, budget)
            staging.rename(target)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise ValueError(f"{name} is damaged and could not be unpacked: {error}.") from error
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return ImportReport(root=_dataset_root(target), images=len(wanted), skipped=skipped)
