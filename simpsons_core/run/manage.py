"""Renaming and deleting runs, for the CLI (`runs rename`, `runs delete`) and the Train page.

Both refuse a running run: its training process writes into the folder by path. Deleting moves the folder
to the workspace's trash (`paths.trash_dir()`), never erases it, so a wrong click can be undone by moving it
back.
This module never imports TensorFlow.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from simpsons_core import paths
from simpsons_core.run.launcher import new_run_id
from simpsons_core.run.lookup import read_run, run_dir

# A run id starts with its start time (`20261124-141530-`), which is what makes ids sort by start.
_STAMP_FORMAT = "%Y%m%d-%H%M%S"
_STAMP_LENGTH = len("20261124-141530")
_RENAMING_PREFIX = ".renaming-"  # hidden from `lookup.list_runs` while the new id is chosen


def _idle_run(run_id: str) -> Path:
    """The folder of an existing run that is not training; raises FileNotFoundError or ValueError."""
    info = read_run(run_id)
    if not info.path.is_dir():
        raise FileNotFoundError(f"There is no run {run_id} (see `simpsons runs list`).")
    if info.state == "running":
        raise ValueError(f"Run {run_id} is training; cancel it (and let it stop) first.")
    return info.path


def rename_run(run_id: str, name: str) -> str:
    """Give run `run_id` a new readable name; returns the new id (`<same start stamp>-<slug of name>`).

    The start stamp is kept so the run stays where it was in every list. Raises ValueError for a running run,
    an empty name or an id without a start stamp, FileNotFoundError for a missing run.
    """
    folder = _idle_run(run_id)
    if not name.strip():
        raise ValueError("Give the run a name.")
    try:
        started = datetime.strptime(run_id[:_STAMP_LENGTH], _STAMP_FORMAT)
    except ValueError:
        raise ValueError(f"Run {run_id} has no start time in its id, so it cannot be renamed.") from None
    # Out of the way first, so a name that slugs to the run's own id is not taken as already in use.
    hidden = folder.with_name(_RENAMING_PREFIX + folder.name)
    folder.rename(hidden)
    try:
        new_id = new_run_id(name, at=started)
        hidden.rename(run_dir(new_id))
    except BaseException:
        hidden.rename(folder)
        raise
    return new_id


def delete_run(run_id: str) -> Path:
    """Move run `run_id` to `<trash>/runs/<id>-<now>`; returns where it went. Raises ValueError for a
    running run, FileNotFoundError for a missing one."""
    folder = _idle_run(run_id)
    target_dir = paths.trash_dir() / "runs"
    target_dir.mkdir(parents=True, exist_ok=True)
    base = f"{run_id}-{datetime.now():{_STAMP_FORMAT}}"
    target, n = target_dir / base, 1
    while target.exists():
        n += 1
        target = target_dir / f"{base}-{n}"
    folder.rename(target)
    return target
