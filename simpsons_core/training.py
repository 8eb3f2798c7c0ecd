"""The training loop of a run: data from the pipeline, a model built inside a `tf.distribute` strategy, and
Keras callbacks that keep the run folder current (see `simpsons_core.runs` for the files).

`train_in_foreground` is what both the CLI's `train` command and the detached child of `runs.start_run` call,
so a run trained from a terminal and one started from the dashboard write the same folder the same way.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from simpsons_core import atomic, runs
from simpsons_core.config import TrainConfig

if TYPE_CHECKING:
    import tensorflow as tf

# The run folder is rewritten at most this often within an epoch: enough for a live curve, and a few ms of
# bookkeeping per second never slows a training step noticeably.
PROGRESS_INTERVAL_SECONDS = 1.0

Progress = Callable[[dict[str, Any]], None]


class RunCancelled(Exception):
    """Raised inside `fit` when a stop was asked for, so training ends after the current batch (without the
    validation pass that `model.stop_training` would still run)."""


class StopRequest:
    """Whether this run was asked to stop: a cancel file in the run folder (`runs.cancel_run`), or SIGTERM or
    Ctrl-C sent to the process. A second Ctrl-C interrupts at once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.signalled = False

    def __bool__(self) -> bool:
        return self.signalled or runs.cancel_requested(self.folder)

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be installed from the main thread
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, frame: Any) -> None:
            if self.signalled and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.signalled = True

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class RunRecorder(keras.callbacks.Callback):
    """Writes a run's progress into its folder while `fit` runs, and stops training when asked.

    After every epoch it saves best.keras when validation accuracy improved, then appends an epoch line to
    metrics.jsonl and updates status.json. Within an epoch it appends a progress line and updates status.json
    (ETA included) at most once every `interval` seconds. After every batch it checks `stop` and raises
    `RunCancelled` if set.

    Args:
        folder: the run folder.
        status: the status written so far (state, pid, started_at...); the recorder keeps it current.
        epochs: the number of epochs planned.
        steps_per_epoch: batches in one epoch.
        stop: a truthy object when the run should stop (`StopRequest`).
        progress: also called with every line written to metrics.jsonl (the CLI's progress bar).
        interval: minimum seconds between two progress lines.

    Example:

        recorder = RunRecorder(folder, status, epochs=10, steps_per_epoch=50, stop=StopRequest(folder))
        model.fit(dataset, steps_per_epoch=50, epochs=10, validation_data=val, callbacks=[recorder])
    """

    def __init__(
        self,
        folder: Path,
        status: dict[str, Any],
        epochs: int,
        steps_per_epoch: int,
        stop: Any = False,
        progress: Progress | None = None,
        interval: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        super().__init__()
        self.folder = folder
        self.status = status
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.stop = stop
        self.progress = progress
        self.interval = interval
        self.best_val_accuracy = -math.inf
        self._started = 0.0
        self._epoch_started = 0.0
        self._last_write = -math.inf
        self._epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()
        self._write_status(phase="training")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stop:
            raise RunCancelled
        now = time.perf_counter()
        if now - self._last_write < self.interval:
            return
        self._last_write = now
        logs = logs or {}
        step = batch + 1
        self._emit(
            {
                "type": "progress",
                "epoch": self._epoch + 1,
                "step": step,
                "steps": self.steps_per_epoch,
                "loss": _number(logs.get("loss")),
                "accuracy": _number(logs.get("accuracy")),
                "time": round(now - self._started, 3),
            }
        )
        self._write_status(step=self._epoch * self.steps_per_epoch + step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        line = {
            "type": "epoch",
            "epoch": epoch + 1,
            "loss": _number(logs.get("loss")),
            "accuracy": _number(logs.get("accuracy")),
            "val_loss": _number(logs.get("val_loss")),
            "val_accuracy": _number(logs.get("val_accuracy")),
            "lr": _number(self.model.optimizer.learning_rate),
            "seconds": round(time.perf_counter() - self._epoch_started, 3),
        }
        val_accuracy = line["val_accuracy"]
        if val_accuracy is not None and val_accuracy > self.best_val_accuracy:
            self.best_val_accuracy = val_accuracy
            runs.save_model(self.model, self.folder / runs.BEST_FILE)
        self._emit(line)  # after the save: a reader who sees epoch N finds best.keras up to date with it
        self._write_status(step=(epoch + 1) * self.steps_per_epoch)

    def _emit(self, line: dict[str, Any]) -> None:
        atomic.append_line(self.folder / runs.METRICS_FILE, _json_line(line))
        if self.progress:
            self.progress(line)

    def _write_status(self, step: int | None = None, **fields: Any) -> None:
        total = self.epochs * self.steps_per_epoch
        if step is not None:
            elapsed = time.perf_counter() - self._started
            fields.update(
                step=step,
                epoch=min(step // self.steps_per_epoch + 1, self.epochs),
                eta_seconds=round(elapsed / step * (total - step), 1) if step else None,
            )
        self.status.update(
            fields, epochs=self.epochs, total_steps=total, steps_per_epoch=self.steps_per_epoch
        )
        write_status(self.folder, self.status)


def train_in_foreground(config: TrainConfig, run_dir: Path, progress: Progress | None = None) -> runs.RunInfo:
    """Train `config` in this process, writing the run folder `run_dir` as it goes; returns the finished run.

    Holds the workspace's training lock meanwhile (adopting it when `runs.start_run` took it for this run).
    Never raises for a failed run: the returned RunInfo has state "failed" and the error, and the traceback
    goes to stderr (log.txt in a detached run). A stop request ends the run as "cancelled" after the current
    batch, with model.keras saved.

    Args:
        config: what to train.
        run_dir: the run folder (created if needed).
        progress: called with every line appended to metrics.jsonl, and with {"type": "phase", "phase",
            "done", "total"} while the data is found and decoded.
    """
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    status: dict[str, Any] = {
        "state": "running",
        "run_id": folder.name,
        **runs.process_identity(),
        "phase": "starting",
        "epoch": 0,
        "epochs": config.epochs,
        "step": 0,
        "total_steps": None,
        "eta_seconds": None,
        "started_at": runs.read_status(folder).get("started_at") or runs.now(),
        "error": None,
    }
    stop = StopRequest(folder)
    with runs.holding_lock(folder.name), stop.handling_signals():
        write_status(folder, status)
        try:
            _train(config, folder, status, stop, progress)
            status.update(state="completed", phase="done", eta_seconds=0)
        except RunCancelled:
            status.update(state="cancelled", phase="cancelled", eta_seconds=None)
        except Exception as error:
            traceback.print_exc()
            status.update(state="failed", phase="failed", eta_seconds=None, error=_describe(error))
        except BaseException:
            write_status(folder, {**status, "state": "failed", "error": "training was interrupted"})
            raise
        status["finished_at"] = runs.now()
        write_status(folder, status)
    return runs.read_run(folder)


def _train(
    config: TrainConfig, folder: Path, status: dict[str, Any], stop: StopRequest, progress: Progress | None
) -> None:
    from simpsons_core import models, pipeline

    keras.utils.set_random_seed(config.seed)
    found, train_images, val_images = _load_data(config, folder, status, progress)
    if stop:
        raise RunCancelled
    strategy = choose_strategy(config.strategy)
    train_ds, steps = pipeline.training_dataset(train_images, config)
    with strategy.scope():
        model = models.build_model(config.model, config.image_size, len(found.classes))
        models.compile_model(model, learning_rate(config, steps))
    val_ds = pipeline.evaluation_dataset(val_images, config)
    status["strategy"] = f"{_strategy_name(strategy)} over {strategy.num_replicas_in_sync} device(s)"
    _log(
        f"Training {config.model} on {len(train_images)} images ({steps} batches of {config.batch_size} an "
        f"epoch), validating on {len(val_images)}, {config.epochs} epochs, {status['strategy']}."
    )
    callbacks: list[keras.callbacks.Callback] = [
        RunRecorder(folder, status, config.epochs, steps, stop=stop, progress=progress)
    ]
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=config.early_stopping_patience
            )
        )
    try:
        model.fit(
            train_ds,
            steps_per_epoch=steps,
            epochs=config.epochs,
            validation_data=val_ds,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, reproducibly
            verbose=0,
        )
    finally:
        # The last weights, after a normal end or a cancel (then the exception continues).
        if sys.exc_info()[0] in (None, RunCancelled):
            status["phase"] = "saving"
            write_status(folder, status)
            runs.save_model(model, folder / runs.MODEL_FILE)
    _score_test_split(config, found, folder, status, progress)


def learning_rate(
    config: TrainConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate for `config.lr_schedule`: constant, or a cosine decay from `config.learning_rate`
    to 0 over the planned steps (the last epochs take small steps and settle, which the leak-free validation
    accuracy rewards; an early stop simply ends it sooner)."""
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps_per_epoch)
    return config.learning_rate


def _score_test_split(
    config: TrainConfig, found: Any, folder: Path, status: dict[str, Any], progress: Progress | None
) -> None:
    """Record in status.json the best model's accuracy on the dataset's own test split (`test_accuracy`) and
    how much of that split has near-duplicates in training (`test_overlap`), so that every reader shows the
    leak-free figure and the test-split figure side by side and sees the inflation.

    A run validated on the leak-free split is evaluated on the test split (saved as evaluation-test.json, as
    the Evaluate page does); a run validated on the test split measured it already (its best val_accuracy),
    so only the overlap is worked out. A dataset without a test split records nothing, and a failure here
    is logged without failing the run: the model is trained and saved by now.
    """
    if not found.test:
        return
    from simpsons_core import evaluate, splits

    status["phase"] = "scoring the test split"
    write_status(folder, status)
    if progress:
        progress({"type": "phase", "phase": status["phase"], "done": 0, "total": 0})
    try:
        if config.validation == "split":
            result = evaluate.evaluate(folder, "test")
            accuracy, overlap = result.accuracy, result.leak_note
        else:
            accuracy = runs.read_run(folder).best_val_accuracy
            overlap = splits.overlap_with_training(found).phrase
    except Exception as error:  # an extra figure must never fail a trained run
        _log(f"The test split could not be scored: {_describe(error)}")
        return
    status.update(test_accuracy=accuracy, test_overlap=overlap)


def _load_data(config: TrainConfig, folder: Path, status: dict[str, Any], progress: Progress | None):
    """Find the dataset, split it and decode both sides; records labels.json and the dataset in config.json.
    Returns (the dataset's layout, training images, validation images)."""
    from simpsons_core import demo_data, layout, pipeline, splits

    def phase(name: str) -> Callable[[int, int], None]:
        """Announce a phase now; the returned callback reports its (done, total) at most once a second."""
        last = -math.inf

        def report(done: int, total: int) -> None:
            nonlocal last
            if done == total or time.perf_counter() - last >= PROGRESS_INTERVAL_SECONDS:
                last = time.perf_counter()
                status.update(phase=name, phase_done=done, phase_total=total)
                write_status(folder, status)
                if progress:
                    progress({"type": "phase", "phase": name, "done": done, "total": total})

        report(0, 0)
        return report

    phase("finding images")
    root = Path(config.data_dir).expanduser() if config.data_dir else demo_data.ensure_demo_dataset()
    found = layout.detect_layout(root)
    _log(found.description)
    train_items, val_items = splits.split_for_training(found, config, progress=phase("splitting"))
    if not val_items:
        raise ValueError(f"{root} leaves no validation images (validation source: {config.validation}).")
    atomic.write_json(folder / runs.LABELS_FILE, list(found.classes))
    train_images, val_images = (
        pipeline.decode_images(
            items, found.classes, config.image_size, progress=phase(f"loading {name} images")
        )
        for name, items in (("training", train_items), ("validation", val_items))
    )
    runs.write_config(folder, config, dataset=_dataset_summary(found, train_images, val_images))
    return found, train_images, val_images


def _dataset_summary(found: Any, train_images: Any, val_images: Any) -> dict[str, Any]:
    """What config.json records about the data: where, which layout, how many images of each class."""

    def per_class(images: Any) -> dict[str, int]:
        counts = [0] * len(found.classes)
        for label in images.labels:
            counts[int(label)] += 1
        return dict(zip(found.classes, counts, strict=True))

    skipped = [
        [str(path), reason] for images in (train_images, val_images) for path, reason in images.skipped
    ]
    return {
        "path": str(found.root),
        "layout": found.kind,
        "description": found.description,
        "classes": list(found.classes),
        "train_images": len(train_images),
        "validation_images": len(val_images),
        "train_per_class": per_class(train_images),
        "validation_per_class": per_class(val_images),
        "skipped": skipped[:100],
        "skipped_count": len(skipped),
    }


def choose_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy for `TrainConfig.strategy`.

    "auto": MirroredStrategy when more than one GPU is visible, else the default (one device).
    "mirrored": over every visible GPU, or every logical CPU device when there is no GPU (as the tests do).
    """
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    raise ValueError(f"Unknown strategy {name!r}: choose auto, default or mirrored.")


def _strategy_name(strategy: tf.distribute.Strategy) -> str:
    import tensorflow as tf

    return "MirroredStrategy" if isinstance(strategy, tf.distribute.MirroredStrategy) else "default strategy"


def write_status(folder: Path, status: dict[str, Any]) -> None:
    status["updated_at"] = runs.now()
    atomic.write_json(folder / runs.STATUS_FILE, status)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _json_line(line: dict[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":"))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _describe(error: BaseException) -> str:
    message = str(error) or type(error).__name__
    return message if isinstance(error, (ValueError, FileNotFoundError, RuntimeError)) else f"{error!r}"
