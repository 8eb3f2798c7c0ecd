"""Finding runs and reading them back: by id, by folder, or "latest"; every run of the workspace; a run's
dataset as it is on disk now.

Reading never raises on a damaged or half-written folder: what is wrong goes into `RunInfo.problems`, and a
run whose process died reads as failed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from simpsons_core import paths
from simpsons_core.runs.folder import (
    CONFIG_FILE,
    LABELS_FILE,
    METRICS_FILE,
    STATES,
    STATUS_FILE,
    UNEXPECTED_END,
    RunInfo,
    read_json,
    read_metrics,
)
from simpsons_core.runs.lock import lock_holder
from simpsons_core.runs.process import process_alive

if TYPE_CHECKING:
    from simpsons_core.data.folders import DatasetLayout

LATEST = "latest"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def run_dir(run_id: str) -> Path:
    """The folder of run `run_id` (which may not exist). Rejects anything that is not a plain folder name."""
    if not _RUN_ID.match(run_id or ""):
        raise ValueError(f"{run_id!r} is not a run id (see `simpsons runs list`).")
    return paths.runs_dir() / run_id


def list_runs() -> list[RunInfo]:
    """Every run in the workspace, oldest first (ids sort by start time)."""
    folders = [p for p in paths.runs_dir().iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [read_run(folder) for folder in sorted(folders, key=lambda p: p.name)]


def read_run(run: str | Path) -> RunInfo:
    """What a run folder says, with `state` corrected for a process that died."""
    folder = Path(run) if isinstance(run, Path) else run_dir(run)
    info = RunInfo(id=folder.name, path=folder, state="unknown")
    if not folder.is_dir():
        info.problems.append(f"The run folder {folder} does not exist.")
        return info
    info.config = read_json(folder / CONFIG_FILE, {}, info.problems, dict)
    info.labels = read_json(folder / LABELS_FILE, [], info.problems, list, required=False)
    info.status = read_json(folder / STATUS_FILE, {}, info.problems, dict, required=False)
    info.epochs, info.progress = read_metrics(folder / METRICS_FILE, info.problems)
    info.state = _state(info)
    return info


def _state(info: RunInfo) -> str:
    status = info.status
    state = status.get("state")
    if not status:
        holder = lock_holder()
        if holder is not None and holder.get("run_id") == info.id:
            return "running"  # the launcher has not written status.json yet
        info.problems.append("status.json is missing or damaged, and no process is training this run.")
        return "unknown"
    if state not in STATES:
        info.problems.append(f"status.json has an unknown state {state!r}.")
        return "unknown"
    if state == "running" and not process_alive(status):
        info.status = {**status, "state": "failed", "error": UNEXPECTED_END}
        info.problems.append(
            f"The training process (pid {status.get('pid')}) is gone although the run says it is running."
        )
        return "failed"
    return state


def find_run(run: str | Path) -> RunInfo:
    """A run id, a run folder path, or "latest" (the newest completed run) -> the run, which must exist."""
    if str(run) == LATEST:
        completed = [info for info in list_runs() if info.state == "completed"]
        if not completed:
            raise FileNotFoundError("There is no completed run yet; train one first.")
        return completed[-1]
    if Path(run).expanduser().is_dir():
        return read_run(Path(run).expanduser().resolve())
    try:
        folder: Path | None = run_dir(str(run))
    except ValueError:  # not a plain folder name
        folder = None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            f"No run {str(run)!r}: give a run id (see `simpsons runs list`), a run folder, or 'latest'."
        )
    return read_run(folder)


def resolve_run(run: str | Path) -> RunInfo:
    """`find_run`, checked to hold what using its model needs: a saved model, labels and a readable config."""
    info = find_run(run)
    if info.model_path is None:
        raise FileNotFoundError(f"Run {info.id} has no saved model yet (no best.keras or model.keras).")
    if not info.labels or info.train_config() is None:
        raise ValueError(
            f"Run {info.id} cannot be used: {' '.join(info.problems) or 'its labels are empty.'}"
        )
    return info


def run_dataset(info: RunInfo) -> DatasetLayout:
    """The run's dataset as it is on disk now (the demo dataset for a run trained on it)."""
    from simpsons_core.data.demo import ensure_demo_dataset
    from simpsons_core.data.folders import detect_layout

    root = info.dataset_path
    if root is None and info.imported:
        raise FileNotFoundError(
            f"Run {info.id} was imported without a dataset; evaluate it on a folder (--data DIR)."
        )
    root = root or ensure_demo_dataset()
    if not root.is_dir():
        raise FileNotFoundError(
            f"Run {info.id}'s dataset {root} is not here; evaluate on a folder (--data DIR)."
        )
    return detect_layout(root)


def trained_on(info: RunInfo, folder: Path) -> bool:
    """Whether the run recorded `folder` as its dataset (False when it recorded none)."""
    root = info.dataset_path
    return root is not None and root.expanduser().resolve() == Path(folder).expanduser().resolve()
