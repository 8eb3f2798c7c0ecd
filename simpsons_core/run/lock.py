"""One run trains at a time per workspace: the training lock.

The lock is a file created atomically (a hard link of a complete file, which fails if the lock exists) naming
the run and the process holding it; a lock whose process is gone is taken over, so a crash never blocks
training for good.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simpsons_core import atomic, paths
from simpsons_core.run.folder import now
from simpsons_core.run.process import process_alive, process_identity

LOCK_FILE = ".training.lock"
_ATTEMPTS = 50
_STALE_GUARD_SECONDS = 10


class RunBusyError(RuntimeError):
    """Another run is training in this workspace."""


def _lock_path() -> Path:
    return paths.runs_dir() / LOCK_FILE


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # missing, or unreadable: either way it holds nothing usable
        return None


def _parse_lock(data: bytes | None) -> dict[str, Any] | None:
    try:
        record = json.loads(data or b"")
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def lock_holder() -> dict[str, Any] | None:
    """The lock record ({"run_id", "pid", "process_started", "taken_at"}) when a live process holds it."""
    record = _parse_lock(_read_bytes(_lock_path()))
    return record if record and process_alive(record) else None


def acquire_lock(run_id: str, owner: dict[str, Any] | None = None) -> None:
    """Take the workspace's training lock for `run_id`, or raise RunBusyError naming the run that holds it.

    Two callers at the same instant get one lock: the lock file appears, complete, through `os.link`, which
    fails when the name exists. A lock whose process is gone (or whose file is damaged) is removed, then
    taking it is tried again.
    """
    path = _lock_path()
    record = {"run_id": run_id, **(owner or process_identity()), "taken_at": now()}
    for _ in range(_ATTEMPTS):
        if _create_exclusively(path, record):
            return
        seen = _read_bytes(path)
        holder = _parse_lock(seen)
        if holder is not None and process_alive(holder):
            raise RunBusyError(
                f"Run {holder.get('run_id')} is training (process {holder.get('pid')}); only one run trains "
                "at a time. Wait for it to finish or cancel it first."
            )
        if seen is not None:
            _remove_stale_lock(path, seen)
    raise RunBusyError("Could not take the training lock: it keeps changing hands; try again.")


def _create_exclusively(path: Path, record: dict[str, Any]) -> bool:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lock-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def _remove_stale_lock(path: Path, seen: bytes) -> None:
    """Delete the lock only if it still holds the stale record `seen`, under a short-lived guard, so two
    processes taking over the same stale lock cannot delete the fresh lock one of them just made."""
    guard = path.with_name(path.name + ".takeover")
    try:
        os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - guard.stat().st_mtime > _STALE_GUARD_SECONDS:  # left by a killed takeover
                guard.unlink()
        time.sleep(0.02)
        return
    try:
        if _read_bytes(path) == seen:
            path.unlink()
    finally:
        guard.unlink(missing_ok=True)


def hand_over_lock(run_id: str, owner: dict[str, Any]) -> bool:
    """Name a new holder (the training child) in the lock `run_id` holds; False if it holds none."""
    record = _parse_lock(_read_bytes(_lock_path()))
    if record is None or record.get("run_id") != run_id:
        return False
    atomic.write_json(_lock_path(), {**record, **owner})
    return True


def release_lock(run_id: str) -> None:
    """Drop the lock if `run_id` holds it (a no-op otherwise, so it is safe in `finally` blocks)."""
    record = _parse_lock(_read_bytes(_lock_path()))
    if record is not None and record.get("run_id") == run_id:
        _lock_path().unlink(missing_ok=True)


@contextlib.contextmanager
def holding_lock(run_id: str) -> Iterator[None]:
    """Hold the training lock for `run_id` in this process while the block runs.

    The detached child finds the lock already taken for its run by `launcher.start_run` and adopts it; a
    direct caller (the foreground CLI, a test) takes it here.
    """
    me = process_identity()
    if not hand_over_lock(run_id, me):
        acquire_lock(run_id, me)
    try:
        yield
    finally:
        release_lock(run_id)
