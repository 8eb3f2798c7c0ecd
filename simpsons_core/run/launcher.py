"""Starting a run in its own process, asking it to stop, and registering a model trained elsewhere.

The child survives the caller (a Streamlit script run, a closed browser tab) and reads config.json from its
run folder; the dashboard and the CLI find it again through the folder and the lock. This module never imports
TensorFlow: starting, listing and cancelling stay instant.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from simpsons_core import paths
from simpsons_core.config import TrainConfig
from simpsons_core.data.folders import detect_layout
from simpsons_core.data.splits import check_trainable
from simpsons_core.run.folder import RunFolder, now
from simpsons_core.run.lock import acquire_lock, hand_over_lock, release_lock
from simpsons_core.run.lookup import read_run, run_dir
from simpsons_core.run.process import process_identity, start_time_of

_SLUG_LENGTH = 40


def run_name(config: TrainConfig) -> str:
    """The readable part of a run id: the model and the dataset folder's name."""
    dataset = Path(config.data_dir).name if config.data_dir else "demo"
    return f"{config.model}-{dataset}"


def new_run_id(name: str, at: datetime | None = None) -> str:
    """A fresh id `YYYYMMDD-HHMMSS-<name>` that sorts by start time (`-2`, `-3`... if the second is taken)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:_SLUG_LENGTH] or "run"
    base = f"{(at or datetime.now()):%Y%m%d-%H%M%S}-{slug}"
    candidate, n = base, 1
    while (paths.runs_dir() / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def begin_run(config: TrainConfig, owner: dict[str, Any] | None = None) -> RunFolder:
    """Check the dataset, take the training lock and make the run's folder with its config.json.

    Raises ValueError saying why when the dataset cannot be trained on (`splits.check_trainable`: no folder
    is made for a run that could only fail or train a class from no images), and RunBusyError (a
    RuntimeError) naming the run that is training when there is one.
    """
    if config.data_dir:  # the demo dataset is generated to be trainable
        check_trainable(detect_layout(config.data_dir))
    run_id = new_run_id(run_name(config))
    acquire_lock(run_id, owner)
    try:
        run = RunFolder(run_dir(run_id))
        run.path.mkdir(parents=True)
        run.write_config(config)
    except BaseException:
        release_lock(run_id)
        raise
    return run


def start_run(config: TrainConfig) -> str:
    """Train `config` in a detached process (its own session, output to log.txt); returns the run id at once.

    Raises what `begin_run` raises: ValueError for a dataset that cannot be trained on, RunBusyError (a
    RuntimeError) naming the running run when one is training.
    """
    run = begin_run(config)
    # Until the child is known, this process stands for the run: if it dies here, the run reads as failed.
    run.update_status(
        state="running", run_id=run.id, phase="starting", started_at=now(), error=None, **process_identity()
    )
    try:
        with open(run.log_path, "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "simpsons_core", "train", "--run-dir", str(run.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=paths.REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "SIMPSONS_HOME": str(paths.home())},
            )
    except BaseException as error:
        run.update_status(state="failed", error=f"Could not start the training process: {error}")
        release_lock(run.id)
        raise
    # Reap the child when it ends, so a long-lived caller (the dashboard) does not collect zombies.
    threading.Thread(target=child.wait, daemon=True).start()
    owner = {"pid": child.pid, "process_started": start_time_of(child.pid)}
    hand_over_lock(run.id, owner)
    if run.read_status().get("pid") == os.getpid():  # the child has not written its own status yet
        run.update_status(**owner)
    return run.id


def cancel_run(run_id: str) -> None:
    """Ask a running run to stop: it finishes the current batch, saves model.keras and ends as `cancelled`."""
    info = read_run(run_id)
    if not info.path.is_dir():
        raise FileNotFoundError(f"There is no run {run_id}.")
    if info.state != "running":
        raise ValueError(f"Run {run_id} is not running (it is {info.state}).")
    info.folder.request_cancel()


def create_completed_run(
    model: Any, labels: list[str], config: TrainConfig, name: str, extra: dict[str, Any] | None = None
) -> str:
    """A completed run holding a model trained elsewhere (imported weights); returns its id."""
    run = RunFolder(run_dir(new_run_id(name)))
    run.path.mkdir(parents=True)
    run.write_config(config, **(extra or {}))
    run.write_labels(labels)
    run.save_model(model)
    run.update_status(state="completed", run_id=run.id, pid=None, started_at=now(), error=None)
    return run.id
