"""Training over several machines (`--strategy multiworker`), played by two worker processes on localhost,
each with a workspace of its own as two machines would have; and the check that says when Keras no longer
needs the workaround in `training.multiworker` (keras-team/keras#20585)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from simpsons_core.inference.evaluate import evaluate
from simpsons_core.run.folder import RunFolder
from simpsons_core.run.lookup import read_run
from simpsons_core.training.strategy import TF_CONFIG, WORKERS_DIR, tf_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 240  # seconds; a run takes 20-40 s on an idle 2-core machine


def free_addresses(count: int) -> str:
    """`count` localhost addresses on ports free right now (closed again before the workers bind them)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return ",".join(f"localhost:{sock.getsockname()[1]}" for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def start_workers(tmp_path: Path, dataset: Path, *options: str) -> list[subprocess.Popen[str]]:
    """Both workers of a 2-worker cluster, each `simpsons train` with its own SIMPSONS_HOME (tmp_path/home<i>,
    as on two machines): the tutorial network at 32 px on the tiny dataset, 7 steps of 15 images an epoch (an
    odd batch: the workers' parts of each batch, and of the validation set, differ in size)."""
    workers = free_addresses(2)
    train = [sys.executable, "-m", "simpsons_core", "train", "--data", str(dataset), "--recipe", "tutorial"]
    small = ["--img-size", "32", "--batch-size", "15", *options]
    return [
        subprocess.Popen(
            [*train, *small, "--workers", workers, "--worker-index", str(index)],
            cwd=REPO,
            env={**os.environ, "SIMPSONS_HOME": str(tmp_path / f"home{index}"), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]


def finish(workers: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    """(exit code, output) of each worker; both are killed if either outlives TIMEOUT."""
    try:
        return [(worker.wait(TIMEOUT), worker.stdout.read()) for worker in workers]  # type: ignore[union-attr]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def only_run(home: Path) -> Path:
    runs = [path for path in (home / "runs").glob("*") if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def test_two_workers_train_together_and_only_the_chief_writes_the_run(tmp_path, tiny_dataset, monkeypatch):
    (chief_code, chief_out), (worker_code, worker_out) = finish(
        start_workers(tmp_path, tiny_dataset, "--epochs", "2")
    )
    assert (chief_code, worker_code) == (0, 0), chief_out[-3000:] + worker_out[-3000:]

    run = read_run(only_run(tmp_path / "home0"))
    assert run.state == "completed", run.error
    assert [line["epoch"] for line in run.epochs] == [1, 2]
    assert run.status["strategy"] == "MultiWorkerMirroredStrategy over 2 device(s) on 2 workers"
    assert len(run.status["workers"]) == 2
    assert run.config["cluster"]["rank"] == 0
    assert (run.config["cluster"]["train_files"], run.dataset["train_images"]) == (96, 48)  # the chief's half
    assert run.status["steps_per_epoch"] == 7  # the cluster's 96 training images over the global batch of 15
    assert (run.path / "best.keras").is_file() and (run.path / "model.keras").is_file()
    # Its validation figures are the whole set's (each worker evaluated a part, of unequal sizes): one machine
    # agrees.
    monkeypatch.setenv("SIMPSONS_HOME", str(tmp_path / "home0"))
    assert evaluate(run.path, "test").accuracy == pytest.approx(run.best_val_accuracy, abs=1e-6)

    assert not (tmp_path / "home1" / "runs").exists() or not any((tmp_path / "home1" / "runs").iterdir())
    [scratch] = (tmp_path / "home1" / WORKERS_DIR).iterdir()
    worker = read_run(scratch)
    assert worker.state == "completed", worker.error
    assert [line["val_accuracy"] for line in worker.epochs] == [line["val_accuracy"] for line in run.epochs]
    assert not (scratch / "best.keras").exists()  # the chief keeps the checkpoints

    chief_weights, worker_weights = weights(run.path / "model.keras"), weights(scratch / "model.keras")
    assert len(chief_weights) == len(worker_weights) > 0
    for chief_array, worker_array in zip(chief_weights, worker_weights, strict=True):
        np.testing.assert_array_equal(chief_array, worker_array)


def test_cancelling_the_chief_stops_every_worker_after_the_current_batch(tmp_path, tiny_dataset):
    workers = start_workers(tmp_path, tiny_dataset, "--epochs", "500")
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and all(worker.poll() is None for worker in workers):
            runs = list((tmp_path / "home0" / "runs").glob("*/status.json"))
            if runs and (read_run(runs[0].parent).status.get("step") or 0) >= 3:
                RunFolder(runs[0].parent).request_cancel()
                break
            time.sleep(0.2)
        else:
            pytest.fail("the chief never reached its third step: " + str(finish(workers)))
        cancelled_at = time.monotonic()
        results = finish(workers)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    stopped_in = time.monotonic() - cancelled_at
    assert [code for code, _ in results] == [130, 130], results
    assert stopped_in < 60, stopped_in
    chief = read_run(only_run(tmp_path / "home0"))
    [scratch] = (tmp_path / "home1" / WORKERS_DIR).iterdir()
    worker = read_run(scratch)
    assert chief.state == worker.state == "cancelled"
    assert chief.status["step"] < 500 * 7
    assert (chief.path / "model.keras").is_file() and (scratch / "model.keras").is_file()


# Keras' fit on two workers, three ways: unpatched, with only the first half of the workaround, with both.
PROBE = textwrap.dedent(
    """
    import contextlib, json, os
    import keras, numpy as np, tensorflow as tf
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer
    from simpsons_core.training.multiworker import keras_fit_fixes

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    data = tf.data.Dataset.from_tensor_slices((np.ones((8, 2), "float32"), np.zeros(8, "int32")))
    keras_reduce = keras_tf_trainer.reduce_per_replica

    def fit(fixes, keep_keras_reduce=False):
        with strategy.scope():
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
            model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
        try:
            with fixes:
                if keep_keras_reduce:
                    keras_tf_trainer.reduce_per_replica = keras_reduce
                model.fit(data.repeat().batch(4), steps_per_epoch=1, verbose=0)
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        return "trained"

    print(json.dumps({
        "unpatched": fit(contextlib.nullcontext()),
        "first_fix_only": fit(keras_fit_fixes(strategy), keep_keras_reduce=True),
        "both": fit(keras_fit_fixes(strategy)),
    }), flush=True)
    os._exit(0)  # not TensorFlow's shutdown barrier, which waits for the other worker
    """
)


def test_keras_still_needs_the_multiworker_workaround(tmp_path):
    """Fails once Keras fixes keras-team/keras#20585: then delete simpsons_core/training/multiworker.py and
    the trainer's `with keras_fit_fixes(...)`, and this test."""
    workers = free_addresses(2)
    probes = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE],
            cwd=REPO,
            env={**os.environ, TF_CONFIG: tf_config(workers, index)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    try:
        outputs = [probe.communicate(timeout=TIMEOUT) for probe in probes]
    finally:
        for probe in probes:
            probe.kill()
    for stdout, stderr in outputs:
        assert stdout.strip(), stderr[-3000:]
        result = json.loads(stdout.strip().splitlines()[-1])
        fixed = "Keras fixed keras-team/keras#20585 here: delete training/multiworker.py and its use"
        assert "Attempt to convert a value (PerReplica" in result["unpatched"], f"{fixed} ({result})"
        assert "Invalid reduction dimension 0" in result["first_fix_only"], f"{fixed} ({result})"
        assert result["both"] == "trained", result
