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

import contextlib
import math
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
from simpsons_core.training.strategy import cluster_for, shard, writes_the_run

if TYPE_CHECKING:
    import keras


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number (`RunRecorder` checks every batch): every later step would only
    spread NaN through the weights, so the run ends as failed, with this message, and saves no model.keras."""

    def __init__(self, loss: float, epoch: int, step: int) -> None:
        word = "NaN" if math.isnan(loss) else "infinite"
        super().__init__(f"the loss became {word} at epoch {epoch}, step {step}: try a lower learning rate")


def train_in_foreground(config: TrainConfig, run_dir: Path, progress: RunProgress | None = None) -> RunInfo:
    """Train `config` in this process, writing the run folder `run_dir` as it goes; returns the finished run.

    Holds the workspace's training lock meanwhile (adopting it when `launcher.start_run` took it for this
    run); a multiworker run's non-chief worker takes none, since `run_dir` is then its scratch folder.
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
    lock = holding_lock(run.id) if writes_the_run(config.strategy) else contextlib.nullcontext()
    with lock, stop.handling_signals():
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
            if stop and cluster_for(config.strategy) is None:  # a cluster's workers stop together, in _train
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
    from simpsons_core.training import frozen_features, models, precision
    from simpsons_core.training.calibrate import calibrate_run
    from simpsons_core.training.multiworker import keras_fit_fixes
    from simpsons_core.training.recorder import RunRecorder
    from simpsons_core.training.strategy import (
        SharedStop,
        choose_strategy,
        cluster_datasets,
        describe,
        worker_callback,
    )

    # First: a multiworker cluster must be joined before this process runs any TensorFlow op.
    cluster = cluster_for(config.strategy)
    if cluster:
        _phase(run, progress, f"waiting for all {cluster.size} workers")  # only `kill -9` ends this wait
    strategy = choose_strategy(config.strategy)
    _phase(run, progress, "choosing the precision")  # before the seed: a probe builds models
    steps_planned = config.epochs * math.ceil(len(train_images) / config.batch_size)
    chosen = precision.resolve_precision(config, len(found.classes), steps_planned)
    run.update_status(precision=chosen.record())
    _log(f"Precision {chosen.reason}.")
    run.update_status(phase="building the model", phase_done=0, phase_total=0)
    keras.utils.set_random_seed(config.seed)
    if cluster is None:
        train_ds, steps = pipeline.training_dataset(train_images, config)
        val_ds = pipeline.evaluation_dataset(val_images, config)
    else:
        train_ds, steps, val_ds = cluster_datasets(
            strategy, cluster, config, found.classes, train_images, val_images
        )
    shared_stop = SharedStop(strategy, stop) if cluster else stop  # a cancel on the chief stops every worker
    if shared_stop:  # the workers stop together, now that they are connected
        raise RunCancelled
    with strategy.scope(), precision.compute_policy(chosen.precision):
        model = models.build_model(config.model, config.image_size, len(found.classes))
        models.compile_model(model, learning_rate(config, steps))
    fitted, saved = model, None
    if frozen_features.trains_only_its_head(model):
        if cluster:
            raise ValueError(
                f"{config.model} trains a head on features computed once, seconds on one machine: train it "
                "without --strategy multiworker."
            )
        features = frozen_features.precompute(
            model, train_ds, steps, val_ds, config.batch_size, config.seed, _phase(run, progress, "features")
        )
        fitted, saved = features.head, model
        train_ds, val_ds, steps = features.train, features.validation, features.steps
        with strategy.scope():
            models.compile_model(fitted, learning_rate(config, steps))
    devices = describe(strategy, cluster)
    weights = class_weights(config, train_images.labels, len(found.classes))
    run.update_status(
        **devices,
        class_weights={found.classes[c]: round(w, 4) for c, w in weights.items()} if weights else None,
    )
    _log(
        f"Training {config.model} on {len(train_images)} images{' here' if cluster else ''} ({steps} "
        f"batches of {config.batch_size} an epoch), validating on {len(val_images)}, {config.epochs} epochs, "
        f"{devices['strategy']} "
        f"({', '.join(devices['devices'])})."
    )
    callbacks: list[keras.callbacks.Callback] = [
        RunRecorder(run, config.epochs, steps, stop=shared_stop, progress=progress, saved_model=saved)
        if cluster is None or cluster.is_chief
        else worker_callback(run, shared_stop, progress)
    ]
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=config.early_stopping_patience
            )
        )
    try:
        with keras_fit_fixes(strategy):  # only under multiworker: keras-team/keras#20585
            fitted.fit(
                train_ds,
                steps_per_epoch=steps,
                epochs=config.epochs,
                validation_data=val_ds,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles, reproducibly
                class_weight=weights,  # a head on frozen features sees the same labels, so the same weights
                verbose=0,
            )
    finally:
        # The last weights, after a normal end or a cancel (then the exception continues).
        if sys.exc_info()[0] in (None, RunCancelled):
            run.update_status(phase="saving")
            run.save_model(model)
    if cluster and not cluster.is_chief:
        return  # the chief calibrates and scores the run; a worker's model.keras only shows it agreed
    calibrate_run(run, config, val_images, progress)  # first: the test split is scored calibrated
    _score_test_split(config, found, run, progress)


def class_weights(config: TrainConfig, labels: Any, num_classes: int) -> dict[int, float] | None:
    """`fit`'s class_weight for `config.class_weights`: None for "none"; for "balanced", each class index with
    training images -> n_images / (num_classes * n_images_of_that_class), scikit-learn's convention (the mean
    weight over the training images is 1, so the loss keeps its scale). `labels` are the training side's class
    indices; a class without training images gets no entry (Keras then weighs it 1, and no image carries it).
    """
    if config.class_weights == "none":
        return None
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    return {c: float(counts.sum() / (num_classes * n)) for c, n in enumerate(counts.tolist()) if n}


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
    the report raises `RunCancelled` (pending work in its pools is cancelled). A multiworker run's workers
    load on and stop together once connected (`_train`): one gone early would leave the others waiting."""
    cluster = cluster_for(config.strategy)

    def phase(name: str) -> Callable[[int, int], None]:
        report = _phase(run, progress, name)

        def checked(done: int, total: int) -> None:
            if stop and cluster is None:
                raise RunCancelled
            report(done, total)

        return checked

    phase("finding images")
    root = Path(config.data_dir).expanduser() if config.data_dir else demo.ensure_demo_dataset()
    found = folders.detect_layout(root)
    _log(found.description)
    notes: list[str] = []
    train_items, val_items = splits.split_for_training(found, config, phase("splitting"), notes)
    for note in notes:
        _log(note)
    if not val_items:
        raise ValueError(f"{root} leaves no validation images (validation source: {config.validation}).")
    train_files, train_items = len(train_items), shard(train_items, cluster)  # a worker decodes its share
    run.write_labels(list(found.classes))
    train_images, val_images = (
        decoding.decode_images(
            items, found.classes, config.image_size, progress=phase(f"loading {name} images")
        )
        for name, items in (("training", train_items), ("validation", val_items))
    )
    shares: dict[str, Any] = {}
    if cluster:  # `dataset` then counts this worker's share of the training images
        shares["cluster"] = dict(workers=list(cluster.addresses), rank=cluster.rank, train_files=train_files)
    summary = _dataset_summary(found, train_images, val_images) | {"validation_notes": notes}
    run.write_config(config, dataset=summary, **shares)
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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _describe(error: BaseException) -> str:
    message = str(error) or type(error).__name__
    return message if isinstance(error, (ValueError, FileNotFoundError, RuntimeError)) else f"{error!r}"
