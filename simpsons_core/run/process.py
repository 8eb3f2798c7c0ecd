"""Which process is which: a pid *and* its start time, so a recycled pid is never mistaken for a live run."""

from __future__ import annotations

from typing import Any

import psutil


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """{"pid", "process_started"}: enough to tell this process from a later one that reuses its pid."""
    process = psutil.Process(pid)
    return {"pid": process.pid, "process_started": process.create_time()}


def start_time_of(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None


def process_alive(record: dict[str, Any]) -> bool:
    """Whether the process a status or lock record names is still running (not exited, not a zombie, not a
    different process that was given the same pid)."""
    pid = record.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = record.get("process_started")
        return started is None or abs(process.create_time() - float(started)) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
