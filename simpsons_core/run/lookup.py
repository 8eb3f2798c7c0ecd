"""Finding runs and reading them back: by id, by folder, or "latest"; every run of the workspace; a run's
dataset as it is on disk now.

Reading never raises on a damaged or half-written folder: what is wrong goes into `RunInfo.problems`, a run
whose process died reads as failed (as does one whose launcher died before status.json), NaN and infinite
figures read as missing, and temp files that killed writers left are removed. Using a run's model
(`resolve_run`) refuses what is damaged, saying what, rather than fall back to default settings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simpsons_core import atomic, paths
from simpsons_core.run.folder import (
    CONFIG_FILE,
    LABELS_FILE,
    LAUNCHER_STOPPED,
    METRICS_FILE,
    STATES,
    STATUS_FILE,
    UNEXPECTED_END,
    RunInfo,
    finite_only,
    read_json,
    read_metrics,
)
from simpsons_core.run.lock import lock_holder
from simpsons_core.run.process import process_alive

if TYPE_CHECKING:
    from simpsons_core.data.folders import DatasetLayout

LATEST = "latest"
# How a command-line argument that names a run is described (every command that uses a run's model).
RUN_ARGUMENT_HELP = "run id, run folder, or 'latest' (newest completed run)"
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
    """What a run folder says, with `state` corrected for a process that died, figures that are not finite
    dropped, and temp files of a killed writer removed."""
    folder = Path(run) if isinstance(run, Path) else run_dir(run)
    info = RunInfo(id=folder.name, path=folder, state="unknown")
    if not folder.is_dir():
        info.problems.append(f"The run folder {folder} does not exist.")
        return info
    atomic.remove_stale_temp_files(folder)
    config_problems: list[str] = []
    info.config = read_json(folder / CONFIG_FILE, {}, config_problems, dict)
    info.config_error = config_problems[0] if config_problems else None
    if problem := info.config_problem:
        info.problems.append(problem)
    info.labels = read_json(folder / LABELS_FILE, [], info.problems, list, required=False)
    info.status = _read_status(folder, info.problems)
    info.epochs, info.progress = read_metrics(folder / METRICS_FILE, info.problems)
    planned = info.epochs_planned
    if planned is not None and len(info.epochs) > planned:
        info.problems.append(
            f"{METRICS_FILE} has {len(info.epochs)} epoch lines for {planned} planned epochs; the first "
            f"{planned} are used."
        )
        info.epochs = info.epochs[:planned]
    info.problems.extend(info.folder.choose_model()[1])
    info.state = _state(info)
    return info


def _read_status(folder: Path, problems: list[str]) -> dict[str, Any]:
    """status.json with non-finite numbers read as missing (an ETA or accuracy of "inf" helps nobody)."""
    status, changed = finite_only(read_json(folder / STATUS_FILE, {}, problems, dict, required=False))
    if changed:
        problems.append(f"{STATUS_FILE} has NaN or infinite numbers; they read as missing.")
    return status


def _state(info: RunInfo) -> str:
    status = info.status
    state = status.get("state")
    if not status:
        holder = lock_holder()
        if holder is not None and holder.get("run_id") == info.id:
            return "running"  # the launcher has not written status.json yet
        if not (info.path / STATUS_FILE).exists() and (info.path / CONFIG_FILE).is_file():
            # Re-read first: the run may have written status.json and let the lock go since it was read.
            info.status = _read_status(info.path, info.problems)
            if info.status:
                return _state(info)
            # `launcher.start_run` writes config.json, then status.json: a launcher killed between the two
            # (kill -9, a crash) left a run that no process will ever train.
            info.status = {"state": "failed", "error": LAUNCHER_STOPPED}
            info.problems.append(f"{STATUS_FILE} is missing: {LAUNCHER_STOPPED}.")
            return "failed"
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
    """`find_run`, checked to hold what using its model needs: a readable config, an intact saved model and
    labels. Raises ValueError "Run X cannot be used: <what is damaged>" (FileNotFoundError when no model was
    saved yet); a damaged best.keras with an intact model.keras is used, and `RunInfo.model_note` says so."""
    info = find_run(run)
    info.usable_config()  # raises, naming what is wrong with config.json
    path, damaged = info.folder.choose_model()
    if path is None and damaged:
        raise ValueError(
            f"Run {info.id} cannot be used: the saved model files are damaged. {' '.join(damaged)}"
        )
    if path is None:
        raise FileNotFoundError(f"Run {info.id} has no saved model yet (no best.keras or model.keras).")
    if not info.labels:
        found = (info.path / LABELS_FILE).exists()
        raise ValueError(
            f"Run {info.id} cannot be used: {LABELS_FILE} is {'damaged or empty' if found else 'missing'}."
        )
    return info


def run_dataset(info: RunInfo) -> DatasetLayout:
    """The run's dataset as it is on disk now (the demo dataset for a run that recorded training on it).
    Raises ValueError for a run whose config.json is missing or damaged: it never guesses the demo dataset."""
    from simpsons_core.data.demo import ensure_demo_dataset
    from simpsons_core.data.folders import detect_layout

    info.usable_config()  # raises, naming what is wrong with config.json
    root = info.dataset_path
    if root is None and info.imported:
        raise FileNotFoundError(
            f"Run {info.id} was imported without a dataset; evaluate it on a folder (--data DIR)."
        )
    if root is None and "data_dir" not in info.config:
        raise ValueError(f"Run {info.id} cannot be used: {CONFIG_FILE} does not record the run's dataset.")
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
