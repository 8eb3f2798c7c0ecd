"""Training for real (TensorFlow, tiny generated data, 32 px): detached runs, the CLI, cancel, kill -9, seeds,
early stopping and a mirrored strategy over two logical CPUs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from simpsons_core import paths
from simpsons_core.config import TrainConfig
from simpsons_core.data.demo import CLASSES
from simpsons_core.run import launcher, lock, lookup
from simpsons_core.run.folder import LOG_FILE, RunFolder, RunInfo
from tests.test_hostile_data import write_classes

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EPOCH_KEYS = {"type", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
PROGRESS_KEYS = {"type", "epoch", "step", "steps", "loss", "accuracy", "time"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simpsons_core", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def tiny_config(data: Path, **changes) -> TrainConfig:
    """A constant learning rate: runs of different lengths then share their first epoch (a cosine schedule
    is tested in test_recipes.py). float32, so a long run never starts with the precision probe (tested in
    test_precision.py)."""
    return TrainConfig(
        data_dir=str(data),
        image_size=32,
        batch_size=16,
        epochs=2,
        lr_schedule="constant",
        precision="float32",
    ).replace(**changes)


def wait_for(run: str | Path, done: Callable[[RunInfo], bool], timeout: float = 120) -> RunInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = lookup.read_run(run)
        if done(info):
            return info
        if time.monotonic() > deadline:
            log = (info.path / LOG_FILE).read_text() if (info.path / LOG_FILE).exists() else ""
            raise AssertionError(f"run {info.id} stuck in {info.state}: {info.status}\n{log[-3000:]}")
        time.sleep(0.2)


def finished(info: RunInfo) -> bool:
    return info.state not in ("running", "unknown")


def load_and_predict(path: Path, count: int = 3) -> np.ndarray:
    import keras

    model = keras.saving.load_model(path)
    return np.asarray(model.predict_on_batch(np.zeros((count, 32, 32, 3), dtype="float32")))


@pytest.fixture(scope="module")
def home(module_workspace: Path) -> Path:
    """One workspace for the module's shared run."""
    return module_workspace


@pytest.fixture(scope="module")
def detached_run(home: Path, tiny_dataset: Path) -> dict:
    """A 2-epoch compact run through `start_run`, and what a second start said while it was running."""
    config = tiny_config(tiny_dataset)
    started = time.monotonic()
    run_id = launcher.start_run(config)
    returned_after = time.monotonic() - started
    try:
        launcher.start_run(config)
        second_start = None
    except RuntimeError as error:
        second_start = str(error)
    info = wait_for(run_id, finished)
    return {"id": run_id, "info": info, "second_start": second_start, "returned_after": returned_after}


def test_a_detached_run_writes_a_complete_run_folder(detached_run, tiny_dataset):
    info = detached_run["info"]
    assert detached_run["returned_after"] < 5  # start_run does not wait for training
    assert info.state == "completed", (info.status, info.problems)
    assert info.problems == []
    folder = info.path
    assert {p.name for p in folder.iterdir()} >= {
        "config.json",
        "labels.json",
        "metrics.jsonl",
        "status.json",
        "model.keras",
        "best.keras",
        "log.txt",
    }
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left
    assert info.labels == list(CLASSES)
    assert info.train_config() == tiny_config(tiny_dataset)
    dataset = info.config["dataset"]
    assert dataset["path"] == str(tiny_dataset.resolve()) and dataset["classes"] == list(CLASSES)
    assert dataset["train_images"] + dataset["validation_images"] == 4 * 24
    assert sum(dataset["validation_per_class"].values()) == dataset["validation_images"]

    assert [line["epoch"] for line in info.epochs] == [1, 2]
    for line in info.epochs:
        assert set(line) == EPOCH_KEYS
        assert line["loss"] > 0 and 0 <= line["val_accuracy"] <= 1 and line["lr"] == pytest.approx(1e-3)
    assert info.progress, "no progress line"
    for line in info.progress:
        assert set(line) == PROGRESS_KEYS and 1 <= line["step"] <= line["steps"]
    # At most one progress line a second, but an epoch's last batch is always written (validation follows).
    within_epochs = [line["time"] for line in info.progress if line["step"] < line["steps"]]
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(within_epochs))
    assert {line["epoch"] for line in info.progress if line["step"] == line["steps"]} == {1, 2}

    status = info.status
    assert status["pid"] != os.getpid() and status["run_id"] == info.id
    assert (status["epoch"], status["epochs"], status["step"]) == (2, 2, status["total_steps"])
    assert status["eta_seconds"] == 0 and status["error"] is None and status["started_at"]
    assert "Training compact on" in (folder / "log.txt").read_text()
    # Calibrated in the child before it completed, the line in its log as `runs show` prints it.
    assert info.calibration.temperature > 0 and "\ncalibration: T " in (folder / "log.txt").read_text()
    assert load_and_predict(folder / "model.keras").shape == (3, 4)
    assert load_and_predict(folder / "best.keras").shape == (3, 4)
    assert lock.lock_holder() is None
    assert [run.id for run in lookup.list_runs()] == [info.id]


def test_a_second_start_while_one_runs_is_refused_by_name(detached_run):
    assert detached_run["second_start"] is not None
    assert f"Run {detached_run['id']} is training" in detached_run["second_start"]


def test_the_same_seed_gives_the_same_first_epoch_loss(detached_run, home, tiny_dataset):
    """The detached run (another process) against two runs here: one with its seed, one with another."""
    from simpsons_core.training.trainer import train_in_foreground

    first_loss = detached_run["info"].epochs[0]["loss"]
    same = train_in_foreground(tiny_config(tiny_dataset, epochs=1), home / "runs" / "same-seed")
    other = train_in_foreground(tiny_config(tiny_dataset, epochs=1, seed=7), home / "runs" / "other-seed")
    assert same.epochs[0]["loss"] == pytest.approx(first_loss, abs=1e-4)
    assert abs(other.epochs[0]["loss"] - first_loss) > 1e-4


def test_the_cli_trains_in_the_foreground_and_lists_the_run(workspace, tiny_dataset):
    help_text = cli("train", "--help").stdout
    for option in (
        "--data",
        "--recipe",
        "--model",
        "--epochs",
        "--batch-size",
        "--img-size",
        "--lr",
        "--seed",
        "--validation",
        "--patience",
        "--strategy",
        "--detach",
    ):
        assert option in help_text
    assert "--run-dir" not in help_text

    missing = cli("train", "--data", str(workspace / "nowhere"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr

    done = cli(
        "train",
        "--data",
        str(tiny_dataset),
        "--recipe",
        "tutorial",
        "--epochs",
        "1",
        "--img-size",
        "32",
        "--batch-size",
        "16",
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1: loss" in done.stdout + done.stderr
    run_id = done.stdout.split()[1].rstrip(":")  # the first line is "Run <id>: <folder>"
    assert f"Run {run_id} completed, best validation accuracy" in done.stdout
    info = lookup.read_run(run_id)
    assert info.state == "completed" and run_id.endswith("-tutorial-demo")
    config = info.train_config()
    assert (config.recipe, config.model, config.validation, config.image_size) == (
        "tutorial",
        "tutorial",
        "test",
        32,
    )
    assert info.config["dataset"]["validation_images"] == 4 * 6  # the test split
    listing = cli("runs", "list").stdout
    row = listing.splitlines()[1]
    assert row.startswith(run_id) and " completed " in row and " 1/1 " in row


def test_two_starts_at_the_same_instant_give_one_run_and_a_failed_run_says_why(workspace, tmp_path):
    """Two threads start a run that can only fail in training (validated on a test split it lacks): one is
    refused, the other fails saying why."""
    no_test_split = write_classes(tmp_path / "no-test-split", {"bart": 2, "homer": 2})
    barrier = threading.Barrier(2)
    results: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            config = TrainConfig(data_dir=str(no_test_split), validation="test")
            results.append("started " + launcher.start_run(config))
        except RuntimeError as error:
            results.append("refused " + str(error))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [r.split()[1] for r in results if r.startswith("started")]
    assert len(started) == 1 and len(results) == 2, results
    info = wait_for(started[0], finished)
    assert info.state == "failed"
    assert "has no test split" in info.error
    assert lock.lock_holder() is None


def test_cancel_stops_after_the_current_batch_and_saves_the_model(workspace, tiny_dataset):
    """Started with `train --detach`, cancelled with `runs cancel`, as a terminal user would."""
    started = cli(
        "train",
        "--data",
        str(tiny_dataset),
        "--img-size",
        "32",
        "--epochs",
        "500",
        "--validation",
        "test",
        "--precision",
        "float32",
        "--detach",
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[2]  # "Started run <id> in the background (...)."
    wait_for(run_id, lambda info: bool(info.progress) or finished(info))
    cancelled = cli("runs", "cancel", run_id)
    assert cancelled.returncode == 0 and "Asked run" in cancelled.stdout
    info = wait_for(run_id, finished, timeout=60)
    assert info.state == "cancelled", info.status
    assert len(info.epochs) < 500 and info.error is None
    assert load_and_predict(info.path / "model.keras").shape == (3, 4)
    assert lock.lock_holder() is None


def test_a_killed_training_process_reads_as_failed_and_keeps_its_metrics(workspace, tiny_dataset):
    run_id = launcher.start_run(tiny_config(tiny_dataset, epochs=500, validation="test"))
    running = wait_for(run_id, lambda info: len(info.epochs) >= 1 or finished(info))
    assert running.state == "running"
    os.kill(running.status["pid"], signal.SIGKILL)
    info = wait_for(run_id, finished, timeout=30)
    assert info.state == "failed"
    assert info.error == "the training process ended unexpectedly"
    assert len(info.epochs) >= 1 and info.best_val_accuracy is not None
    assert load_and_predict(info.path / "best.keras").shape == (3, 4)
    # The dead run's lock is stale: the next run may start.
    assert lock.lock_holder() is None
    next_run = launcher.begin_run(TrainConfig()).id
    lock.release_lock(next_run)


def test_early_stopping_ends_a_run_whose_validation_accuracy_stops_improving(workspace, tiny_dataset):
    """With a vanishing learning rate nothing improves after epoch 1, so patience 1 stops after epoch 2."""
    from simpsons_core.training.trainer import train_in_foreground

    config = tiny_config(
        tiny_dataset,
        model="tutorial",
        epochs=6,
        learning_rate=1e-12,
        early_stopping_patience=1,
        validation="test",
    )
    info = train_in_foreground(config, paths.runs_dir() / "early")
    assert info.state == "completed"
    assert [line["epoch"] for line in info.epochs] == [1, 2]
    assert (info.path / "best.keras").is_file()


def test_a_mirrored_strategy_trains_over_two_logical_cpus(workspace, tiny_dataset):
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from pathlib import Path
        from simpsons_core.config import TrainConfig
        from simpsons_core.training.trainer import train_in_foreground
        config = TrainConfig(data_dir={str(tiny_dataset)!r}, image_size=32, batch_size=16, epochs=1,
                             strategy="mirrored", validation="test")
        info = train_in_foreground(config, Path({str(workspace / "runs" / "mirrored")!r}))
        print(info.state, info.error)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, child.stderr[-3000:]
    info = lookup.read_run(workspace / "runs" / "mirrored")
    assert info.state == "completed", child.stderr[-3000:]
    assert info.status["strategy"] == "MirroredStrategy over 2 device(s)"
    assert len(info.epochs) == 1 and info.epochs[0]["loss"] > 0
    assert json.loads((info.path / "labels.json").read_text()) == list(CLASSES)


def test_sigterm_and_ctrl_c_ask_the_run_to_stop_and_a_second_ctrl_c_interrupts(tmp_path):
    from simpsons_core.training.control import StopRequest

    stop = StopRequest(RunFolder(tmp_path))
    before = signal.getsignal(signal.SIGTERM)
    with stop.handling_signals():
        assert not stop
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # Python runs the handler between bytecodes
        assert stop
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGTERM) is before
    assert not StopRequest(RunFolder(tmp_path))
    RunFolder(tmp_path).request_cancel()
    assert StopRequest(RunFolder(tmp_path))


def test_a_stop_request_ends_the_data_phases_at_the_next_file(workspace, tiny_dataset):
    """A run is cancellable in every phase, not only once batches run: decoding stops at its next file."""
    from simpsons_core.training.trainer import train_in_foreground

    run = RunFolder(workspace / "runs" / "cancel-while-decoding")
    phases: list[str] = []

    def on_progress(line: dict) -> None:
        if line.get("type") == "phase":
            phases.append(line["phase"])
            if line["phase"] == "loading training images" and line["done"] == 0:
                run.request_cancel()

    info = train_in_foreground(tiny_config(tiny_dataset), run.path, progress=on_progress)
    assert info.state == "cancelled" and not info.epochs
    assert "loading validation images" not in phases and info.model_path is None
