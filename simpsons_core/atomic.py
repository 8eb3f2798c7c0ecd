"""Writes that a concurrent reader never sees half done: a temp file in the same folder, then `os.replace`.

Temp files are hidden and carry TEMP_MARKER: `.<name>.<random>.tmp` (`write_bytes`) and
`.<stem>.<pid>.tmp<suffix>` (`temp_path_for`). A writer killed mid-write (kill -9) leaves one behind;
`remove_stale_temp_files` clears those.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

TEMP_MARKER = ".tmp"
# A live writer's temp file is seconds old at most (written, flushed and renamed in one go); one untouched for
# this long was left by a writer that died.
STALE_TEMP_SECONDS = 60.0


def write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_MARKER)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; run folders and caches are for every reader
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def append_line(path: Path, text: str) -> None:
    """Append one whole line in a single write, so a reader sees either all of it or none."""
    line = (text.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    """A temp name beside `path` for writers that need a file name (Keras `model.save`); rename it with
    `os.replace` when done. Keeps the real suffix because some writers check it."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}{TEMP_MARKER}{path.suffix}")


def is_temp_name(name: str) -> bool:
    """Whether `name` is one of this module's temp file names."""
    return name.startswith(".") and (name.endswith(TEMP_MARKER) or f"{TEMP_MARKER}." in name)


def remove_stale_temp_files(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> None:
    """Delete the temp files in `folder` (not below it) untouched for `older_than` seconds, which writers that
    were killed left behind. Never raises: a file another process removes first, or one this process may not
    delete, is left as it is."""
    cutoff = time.time() - older_than
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not is_temp_name(entry.name):
                continue
            with contextlib.suppress(OSError):
                if (
                    entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff
                ):
                    os.unlink(entry.path)
