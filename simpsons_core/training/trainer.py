"""The training loop of a run: data from the pipeline, a model built inside a `tf.distribute` strategy, and
a Keras callback that keeps the run folder current (see `simpsons_core.run.folder` for the files).

`train_in_foreground` is what both the CLI's `train` command and the detached child of `launcher.start_run`
call, so a run trained from a terminal and one started from the dashboard write the same folder the same way.
Every file of the folder is written through its `RunFolder`.

This module imports TensorFlow only when it needs it: a fresh training process finds, splits and decodes its
images (no TensorFlow involved) while another thread imports TensorFlow, which takes seconds of the time
before a user sees the first progress line.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simpsons_core.config import TrainConfig
from simpsons_core.data import decoding, demo, folders, splits
from simpsons_core.run.folder import RunFolder, RunInfo, now
from simpsons_core.run.lock import holding_lock
from simpsons_core.run.lookup import read_run
from simpsons_core.run.process import process_identity
from simpsons_core.tf_notices import import_tensorflow_in_background
from simpsons_core.training.control import (
    PROGRESS_INTERVAL_SECONDS,
    RunCancelled,
    RunProgress,
    StopRequest,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number (`RunRecorder` checks every batch): every later step would only
    spread NaN through the weights, so the run ends as failed, with this message, and saves no model.keras."""

    def __init__(self, loss: float, epoch: int, step: int) -> None:
        word = "NaN" if math.isnan(loss) else "infinite"
        super().__init__(f"the loss became {word} at epoch {epoch}, step {step}: try a lower learning rate")


def train_in_foreground(config: TrainConfig, run_dir: Path, progress: RunProgress | None = None) -> RunInfo:
    """Train `config` in this process, writing the run folder `run_dir` as it goes; returns the finished run.

    Holds the workspace's training lock meanwhile (adopting it when `launcher.start_run` took it for this
    run).
    Never raises for a failed run: the returned RunInfo has state "failed" and the error, and the traceback
    goes to stderr (log.txt in a detached run); a loss that becomes NaN fails it too (`TrainingDiverged`). A
    stop request ends the run as "cancelled" after the current batch, with model.keras saved.

    Args:
        config: what to train.
        run_dir: the run folder (created if needed).
        progress: called with every line appended to metrics.jsonl, and with {"type": "phase", "phase",
            "done", "total"} while the data is found and decoded.
    """
    run = RunFolder(run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    stop = StopRequest(run)
    with holding_lock(run.id), stop.handling_signals():
        run.update_status(
            state="running",
            run_id=run.id,
            **process_identity(),
            phase="starting",
            epoch=0,
            epochs=config.epochs,
            step=0,
            total_steps=None,
            eta_seconds=None,
            started_at=run.read_status().get("started_at") or now(),
            error=None,
        )
        try:
            keras_import = import_tensorflow_in_background()
            data = _load_data(config, run, progress, stop)
            keras_import.join()
            if stop:
                raise RunCancelled
            _train(config, run, stop, progress, *data)
            end: dict[str, Any] = {"state": "completed", "phase": "done", "eta_seconds": 0}
        except RunCancelled:
            end = {"state": "cancelled", "phase": "cancelled", "eta_seconds": None}
        except Exception as error:
            if isinstance(error, TrainingDiverged):
                _log(str(error))  # an outcome of the settings, not a bug: its traceback would only be noise
            else:
                traceback.print_exc()
            end = {"state": "failed", "phase": "failed", "eta_seconds": None, "error": _describe(error)}
        except BaseException:
            run.update_status(state="failed", error="training was interrupted")
            raise
        run.update_status(**end, finished_at=now())
    return read_run(run.path)


def _train(
    config: TrainConfig,
    run: RunFolder,
    stop: StopRequest,
    progress: RunProgress | None,
    found: folders.DatasetLayout,
    train_images: decoding.DecodedImages,
    val_images: decoding.DecodedImages,
) -> None:
    import keras

    from simpsons_core.data import pipeline
    from simpsons_core.training import frozen_features, models
    from simpsons_core.training.calibrate import calibrate_run
    from simpsons_core.training.recorder import RunRecorder

    run.update_status(phase="building the model", phase_done=0, phase_total=0)
    keras.utils.set_random_seed(config.seed)
    strategy = choose_strategy(config.strategy)
    train_ds, steps = pipeline.training_dataset(train_images, config)
    with strategy.scope():
        model = models.build_model(config.model, config.image_size, len(found.classes))
        models.compile_model(model, learning_rate(config, steps))
    val_ds = pipeline.evaluation_dataset(val_images, config)
    fitted, saved = model, None
    if frozen_features.trains_only_its_head(model):
        features = frozen_features.precompute(
            model, train_ds, steps, val_ds, config.batch_size, config.seed, _phase(run, progress, "features")
        )
        fitted, saved = features.head, model
        train_ds, val_ds, steps = features.train, features.validation, features.steps
        with strategy.scope():
            models.compile_model(fitted, learning_rate(config, steps))
    devices = f"{_strategy_name(strategy)} over {strategy.num_replicas_in_sync} device(s)"
    run.update_status(strategy=devices)
    _log(
        f"Training {config.model} on {len(train_images)} images ({steps} batches of {config.batch_size} an "
        f"epoch), validating on {len(val_images)}, {config.epochs} epochs, {devices}."
    )
    callbacks: list[keras.callbacks.Callback] = [
        RunRecorder(run, config.epochs, steps, stop=stop, progress=progress, saved_model=saved)
    ]
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=config.early_stopping_patience
            )
        )
    try:
        fitted.fit(
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
            run.update_status(phase="saving")
            run.save_model(model)
    calibrate_run(run, config, val_images, progress)  # first: the test split is scored calibrated
    _score_test_split(config, found, run, progress)


def learning_rate(
    config: TrainConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate for `config.lr_schedule`: constant, or a cosine decay from `config.learning_rate`
    to 0 over the planned steps (the last epochs take small steps and settle, which the leak-free validation
    accuracy rewards; an early stop simply ends it sooner)."""
    import keras

    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps_per_epoch)
    return config.learning_rate


def _score_test_split(config: TrainConfig, found: Any, run: RunFolder, progress: RunProgress | None) -> None:
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
    from simpsons_core.data import splits
    from simpsons_core.inference import evaluate

    phase = "scoring the test split"
    run.update_status(phase=phase)
    if progress:
        progress({"type": "phase", "phase": phase, "done": 0, "total": 0})
    try:
        if config.validation == "split":
            result = evaluate.evaluate(run.path, "test")
            accuracy, overlap = result.accuracy, result.leak_note
        else:
            accuracy = read_run(run.path).best_val_accuracy
            overlap = splits.overlap_with_training(found).phrase
    except Exception as error:  # an extra figure must never fail a trained run
        _log(f"The test split could not be scored: {_describe(error)}")
        return
    run.update_status(test_accuracy=accuracy, test_overlap=overlap)


def _phase(run: RunFolder, progress: RunProgress | None, name: str) -> Callable[[int, int], None]:
    """Announce a phase now; the returned callback reports its (done, total) at most once a second."""
    last = -math.inf

    def report(done: int, total: int) -> None:
        nonlocal last
        if done == total or time.perf_counter() - last >= PROGRESS_INTERVAL_SECONDS:
            last = time.perf_counter()
            run.update_status(phase=name, phase_done=done, phase_total=total)
            if progress:
                progress({"type": "phase", "phase": name, "done": done, "total": total})

    report(0, 0)
    return report


def _load_data(
    config: TrainConfig, run: RunFolder, progress: RunProgress | None, stop: StopRequest
) -> tuple[folders.DatasetLayout, decoding.DecodedImages, decoding.DecodedImages]:
    """Find the dataset, split it and decode both sides; records labels.json and the dataset in config.json.
    Returns (the dataset's layout, training images, validation images). Needs no TensorFlow.

    A stop request ends any of these phases at its next file: the data layer reports progress per file, and
    the report raises `RunCancelled` (pending work in its pools is cancelled)."""

    def phase(name: str) -> Callable[[int, int], None]:
        report = _phase(run, progress, name)

        def checked(done: int, total: int) -> None:
            if stop:
                raise RunCancelled
            report(done, total)

        return checked

    phase("finding images")
    root = Path(config.data_dir).expanduser() if config.data_dir else demo.ensure_demo_dataset()
    found = folders.detect_layout(root)
    _log(found.description)
    train_items, val_items = splits.split_for_training(found, config, progress=phase("splitting"))
    if not val_items:
        raise ValueError(f"{root} leaves no validation images (validation source: {config.validation}).")
    run.write_labels(list(found.classes))
    train_images, val_images = (
        decoding.decode_images(
            items, found.classes, config.image_size, progress=phase(f"loading {name} images")
        )
        for name, items in (("training", train_items), ("validation", val_items))
    )
    run.write_config(config, dataset=_dataset_summary(found, train_images, val_images))
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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _describe(error: BaseException) -> str:
    message = str(error) or type(error).__name__
    return message if isinstance(error, (ValueError, FileNotFoundError, RuntimeError)) else f"{error!r}"
