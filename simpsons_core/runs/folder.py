"""Training runs on disk: starting one in its own process, asking it to stop, and reading any run folder back.

A run lives in `<SIMPSONS_HOME>/runs/<id>/`; the id (`20261124-141530-compact-demo`) sorts by start time.
The training process is the only writer of its folder and writes every file atomically, so the dashboard, the
CLI and other processes can read a run at any moment and reattach to it after a closed tab or a restart:

- `config.json`: `TrainConfig.to_dict()` plus `dataset`, what the run found in its data folder.
- `labels.json`: class names in the model's output order.
- `metrics.jsonl`: one JSON object a line, appended whole: `{"type": "epoch", "epoch", "loss", "accuracy",
  "val_loss", "val_accuracy", "lr", "seconds"}` after each epoch and `{"type": "progress", "epoch", "step",
  "steps", "loss", "accuracy", "time"}` at most once a second within an epoch (`time`: seconds since training
  began; `epoch` counts from 1, `step` is the number of batches done in that epoch).
- `status.json`: `state` (running, completed, cancelled, failed), `pid`, `phase`, `epoch`, `epochs`, `step`
  and `total_steps` (batches done and planned over the whole run), `eta_seconds`, `started_at`, `updated_at`,
  `error`.
- `model.keras` (the last weights), `best.keras` (the best validation accuracy so far), `log.txt`.

One run trains at a time per workspace. The lock is a file created atomically (a hard link of a complete
file, which fails if the lock exists) naming the run and the process holding it; a lock whose process is gone
is taken over, so a crash never blocks training for good. Processes are identified by pid *and* start time, so
a recycled pid is never mistaken for a live run.

This module never imports TensorFlow: starting, listing and cancelling stay instant.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from simpsons_core import atomic, paths
from simpsons_core.config import TrainConfig

STATES = ("running", "completed", "cancelled", "failed")
UNEXPECTED_END = "the training process ended unexpectedly"
CONFIG_FILE = "config.json"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
LOG_FILE = "log.txt"
CANCEL_FILE = "cancel.request"
LOCK_FILE = ".training.lock"

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RunBusyError(RuntimeError):
    """Another run is training in this workspace."""


@dataclass
class RunInfo:
    """Everything a reader can learn about a run folder, however damaged.

    Attributes:
        id: the folder name.
        path: the run folder.
        state: "running", "completed", "cancelled" or "failed"; "unknown" when the folder says too little.
        status: status.json as written (plus the liveness verdict applied to `state`).
        config: config.json (TrainConfig fields plus `dataset`); {} when missing or damaged.
        labels: class names in output order; [] when missing or damaged.
        epochs: the epoch lines of metrics.jsonl, in order.
        progress: the progress lines of metrics.jsonl, in order.
        problems: what is wrong with the folder, one sentence each (missing or corrupt files, a dead process).
    """

    id: str
    path: Path
    state: str
    status: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return self.status.get("error")

    @property
    def is_active(self) -> bool:
        return self.state == "running"

    @property
    def best_val_accuracy(self) -> float | None:
        values = [line.get("val_accuracy") for line in self.epochs]
        values = [value for value in values if isinstance(value, (int, float))]
        return max(values) if values else None

    @property
    def model_path(self) -> Path | None:
        """best.keras when present, else model.keras, else None."""
        for name in (BEST_FILE, MODEL_FILE):
            if (self.path / name).is_file():
                return self.path / name
        return None

    def train_config(self) -> TrainConfig | None:
        """The run's TrainConfig, or None when config.json is missing or does not parse."""
        return config_from_dict(self.config)


# --- identifying the training process -----------------------------------------------------------------------


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """{"pid", "process_started"}: enough to tell this process from a later one that reuses its pid."""
    process = psutil.Process(pid)
    return {"pid": process.pid, "process_started": process.create_time()}


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


# --- the one-run-at-a-time lock -----------------------------------------------------------------------------


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
    for _ in range(50):
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
            if time.time() - guard.stat().st_mtime > 10:  # left by a process killed mid-takeover
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

    The detached child finds the lock already taken for its run by `start_run` and adopts it; a direct caller
    (the foreground CLI, a test) takes it here.
    """
    me = process_identity()
    if not hand_over_lock(run_id, me):
        acquire_lock(run_id, me)
    try:
        yield
    finally:
        release_lock(run_id)


# --- run ids and folders ------------------------------------------------------------------------------------


def run_dir(run_id: str) -> Path:
    """The folder of run `run_id` (which may not exist). Rejects anything that is not a plain folder name."""
    if not _RUN_ID.match(run_id or ""):
        raise ValueError(f"{run_id!r} is not a run id (see `python -m simpsons_core runs list`).")
    return paths.runs_dir() / run_id


def run_name(config: TrainConfig) -> str:
    """The readable part of a run id: the model and the dataset folder's name."""
    dataset = Path(config.data_dir).name if config.data_dir else "demo"
    return f"{config.model}-{dataset}"


def new_run_id(name: str, at: datetime | None = None) -> str:
    """A fresh id `YYYYMMDD-HHMMSS-<name>` that sorts by start time (`-2`, `-3`... if the second is taken)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "run"
    base = f"{(at or datetime.now()):%Y%m%d-%H%M%S}-{slug}"
    candidate, n = base, 1
    while (paths.runs_dir() / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def write_config(folder: Path, config: TrainConfig, **extra: Any) -> None:
    """config.json: the TrainConfig's fields at the top level (what `TrainConfig.from_dict` reads back) and
    anything the run learned about its data (`dataset=...`) beside them."""
    atomic.write_json(folder / CONFIG_FILE, {**config.to_dict(), **extra})


def config_from_dict(data: dict[str, Any]) -> TrainConfig | None:
    """The TrainConfig inside a config.json (extra keys ignored), or None when it does not parse."""
    fields = TrainConfig.__dataclass_fields__
    try:
        return TrainConfig.from_dict({key: value for key, value in data.items() if key in fields})
    except (TypeError, ValueError):
        return None


def read_status(folder: Path) -> dict[str, Any]:
    """status.json as written ({} when missing or damaged), without the liveness check of `read_run`."""
    return _read_json(folder / STATUS_FILE, {})


def write_status(folder: Path, **fields: Any) -> dict[str, Any]:
    """Rewrite status.json with `fields` merged over what it holds; returns the new status."""
    status = {**read_status(folder), **fields, "updated_at": now()}
    atomic.write_json(folder / STATUS_FILE, status)
    return status


def begin_run(config: TrainConfig, owner: dict[str, Any] | None = None) -> str:
    """Take the training lock and make the run's folder with its config.json; returns the run id.

    Raises RunBusyError (a RuntimeError) naming the run that is training when there is one.
    """
    run_id = new_run_id(run_name(config))
    acquire_lock(run_id, owner)
    try:
        folder = run_dir(run_id)
        folder.mkdir(parents=True)
        write_config(folder, config)
    except BaseException:
        release_lock(run_id)
        raise
    return run_id


def start_run(config: TrainConfig) -> str:
    """Train `config` in a detached process (its own session, output to log.txt); returns the run id at once.

    The child survives the caller (a Streamlit script run, a closed browser tab) and reads config.json from
    the run folder. Raises RunBusyError (a RuntimeError) naming the running run when one is training.
    """
    if config.data_dir and not Path(config.data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"The dataset folder {config.data_dir} does not exist.")
    run_id = begin_run(config)
    folder = run_dir(run_id)
    # Until the child is known, this process stands for the run: if it dies here, the run reads as failed.
    write_status(
        folder,
        state="running",
        run_id=run_id,
        phase="starting",
        started_at=now(),
        error=None,
        **process_identity(),
    )
    try:
        with open(folder / LOG_FILE, "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "simpsons_core", "train", "--run-dir", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=paths.REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "SIMPSONS_HOME": str(paths.home())},
            )
    except BaseException as error:
        write_status(folder, state="failed", error=f"Could not start the training process: {error}")
        release_lock(run_id)
        raise
    # Reap the child when it ends, so a long-lived caller (the dashboard) does not collect zombies.
    threading.Thread(target=child.wait, daemon=True).start()
    owner = {"pid": child.pid, "process_started": _start_time_of(child.pid)}
    hand_over_lock(run_id, owner)
    if read_status(folder).get("pid") == os.getpid():  # the child has not written its own status yet
        write_status(folder, **owner)
    return run_id


def _start_time_of(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None


def cancel_run(run_id: str) -> None:
    """Ask a running run to stop: it finishes the current batch, saves model.keras and ends as `cancelled`."""
    info = read_run(run_id)
    if not info.path.is_dir():
        raise FileNotFoundError(f"There is no run {run_id}.")
    if info.state != "running":
        raise ValueError(f"Run {run_id} is not running (it is {info.state}).")
    atomic.write_text(info.path / CANCEL_FILE, now() + "\n")


def cancel_requested(folder: Path) -> bool:
    return (folder / CANCEL_FILE).exists()


def create_completed_run(
    model: Any, labels: list[str], config: TrainConfig, name: str, extra: dict[str, Any] | None = None
) -> str:
    """A completed run holding a model trained elsewhere (imported weights); returns its id."""
    run_id = new_run_id(name)
    folder = run_dir(run_id)
    folder.mkdir(parents=True)
    write_config(folder, config, **(extra or {}))
    atomic.write_json(folder / LABELS_FILE, list(labels))
    save_model(model, folder / MODEL_FILE)
    write_status(folder, state="completed", run_id=run_id, pid=None, started_at=now(), error=None)
    return run_id


def save_model(model: Any, path: Path) -> None:
    """`model.save` to a temp name beside `path`, flushed to disk, then renamed over it."""
    tmp = atomic.temp_path_for(path)
    try:
        model.save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- reading ------------------------------------------------------------------------------------------------


def list_runs() -> list[RunInfo]:
    """Every run in the workspace, oldest first (ids sort by start time)."""
    folders = [p for p in paths.runs_dir().iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [read_run(folder) for folder in sorted(folders, key=lambda p: p.name)]


def read_run(run: str | Path) -> RunInfo:
    """What a run folder says, with `state` corrected for a process that died. Never raises on a damaged or
    half-written folder: what is wrong goes into `problems`."""
    folder = Path(run) if isinstance(run, Path) else run_dir(run)
    info = RunInfo(id=folder.name, path=folder, state="unknown")
    if not folder.is_dir():
        info.problems.append(f"The run folder {folder} does not exist.")
        return info
    info.config = _read_json(folder / CONFIG_FILE, {}, info.problems, dict)
    info.labels = _read_json(folder / LABELS_FILE, [], info.problems, list, required=False)
    info.status = _read_json(folder / STATUS_FILE, {}, info.problems, dict, required=False)
    info.epochs, info.progress = _read_metrics(folder / METRICS_FILE, info.problems)
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


def _read_json(
    path: Path,
    default: Any,
    problems: list[str] | None = None,
    kind: type = dict,
    required: bool = True,
) -> Any:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if problems is not None and required:
            problems.append(f"{path.name} is missing.")
        return default
    except (OSError, ValueError) as error:
        if problems is not None:
            problems.append(f"{path.name} is damaged ({error}).")
        return default
    if not isinstance(value, kind):
        if problems is not None:
            problems.append(f"{path.name} does not hold a JSON {kind.__name__}.")
        return default
    return value


def _read_metrics(path: Path, problems: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    epochs: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return epochs, progress
    except OSError as error:
        problems.append(f"{path.name} could not be read ({error}).")
        return epochs, progress
    bad = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            bad.append(number)
        elif record.get("type") == "epoch":
            epochs.append(record)
        elif record.get("type") == "progress":
            progress.append(record)
    if bad:
        problems.append(
            f"{path.name} has {len(bad)} unreadable line(s) (line {', '.join(map(str, bad[:5]))})."
        )
    return epochs, progress


def now() -> str:
    """The local time with its UTC offset, as status.json records times."""
    return datetime.now().astimezone().isoformat(timespec="seconds")
