"""Child-side training measurements: images/s of one pipeline and model with chosen compute levers.

Pipelines, all feeding the same model at the same batch size with the same augmentation:
  a. "legacy": the tutorial's ImageDataGenerator (`benchmarks.legacy_tutorial`);
  b. "project": `pipeline.training_dataset`, as training uses it;
  c. "memory": the model alone, on batches already in memory (no augmentation), the ceiling for a and b.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

SEED = 1337


@dataclass(frozen=True)
class Levers:
    """Compute settings compared against Keras defaults (every default here is what Keras does untouched).

    Args:
        jit_compile: compile the train step with XLA (Keras' "auto" turns XLA off on CPU).
        precision: "float32", or "bfloat16" (Keras' mixed_bfloat16 policy: bfloat16 compute, float32 weights),
            as `TrainConfig.precision` names them once resolved.
        batch_size: images per step.
        intra_threads: TensorFlow's threads inside one op; 0 lets TensorFlow pick (one per core).
        inter_threads: ops run concurrently; 0 lets TensorFlow pick.
        tfdata_threads: a private thread pool of this size for the input pipeline; 0 shares TensorFlow's.
        onednn: TensorFlow's oneDNN kernels (its default on x86 Linux); False sets TF_ENABLE_ONEDNN_OPTS=0.
        optimizer: "" keeps what `models.compile_model` chose (the fused Adam, as training uses); "adam" is
            Keras' own Adam, "fused_adam" `performance.fused_adam` (the same update in one fused kernel).
    """

    jit_compile: bool = False
    precision: str = "float32"
    batch_size: int = 32
    intra_threads: int = 0
    inter_threads: int = 0
    tfdata_threads: int = 0
    onednn: bool = True
    optimizer: str = ""

    def apply_globally(self) -> None:
        """oneDNN must be chosen before TensorFlow is imported, thread counts before it runs its first op."""
        if not self.onednn:
            os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
        import keras
        import tensorflow as tf

        if self.intra_threads:
            tf.config.threading.set_intra_op_parallelism_threads(self.intra_threads)
        if self.inter_threads:
            tf.config.threading.set_inter_op_parallelism_threads(self.inter_threads)
        from simpsons_core.training.precision import POLICIES

        keras.mixed_precision.set_global_policy(POLICIES[self.precision])

    def compile(self, net) -> None:
        """Compile `net` as training does, then apply the optimizer and XLA levers."""
        import keras

        from simpsons_core.training.models import compile_model
        from simpsons_core.training.optimizer import fused_adam

        compile_model(net, learning_rate=1e-3)
        if self.optimizer:
            optimizer = {"adam": keras.optimizers.Adam, "fused_adam": fused_adam}[self.optimizer]
            net.optimizer = optimizer(
                learning_rate=float(keras.ops.convert_to_numpy(net.optimizer.learning_rate))
            )
        net.jit_compile = self.jit_compile

    def changes(self) -> dict[str, Any]:
        """Only the settings that differ from the defaults."""
        default = asdict(Levers())
        return {k: v for k, v in asdict(self).items() if v != default[k]}


def cpu_seconds() -> float:
    """CPU time this process has used so far, all threads."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def batch_clock():
    """A Keras callback recording wall-clock and CPU time after every batch (made here so that Keras is
    imported after the levers are applied)."""
    import keras

    class BatchClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[tuple[float, float]] = []

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.times.append((time.perf_counter(), cpu_seconds()))

    return BatchClock()


def measure_training_speed(
    pipeline: str,
    model: str,
    data_dir: str,
    warmup_steps: int = 0,
    image_size: int = 64,
    levers: dict[str, Any] | None = None,
    tf_profile_steps: int = 0,
    steps: int = 0,
) -> dict[str, Any]:
    """Steady-state images/s over one full epoch (or `steps` steps), after warming up.

    With `warmup_steps` 0, the warm-up is a whole first epoch, timed: `first_epoch_seconds` runs from the
    start of data preparation (listing or decoding the files) to the end of epoch 1, which is what a user
    waits for, and the measured epoch includes the epoch boundary. Otherwise a separate `fit` of that many
    steps warms up (tracing, compiling) and the measured `fit` of one epoch, or of `steps` steps when given
    (a short steady-state figure for a slow network), runs from its first batch to its last.
    `tf_profile_steps` > 0 profiles that many more steps with the TensorFlow profiler: where the time goes.
    The result also gives the network's trained MFLOP per image, for its hardware bound.
    """
    if steps and not warmup_steps:
        raise ValueError(
            "A measure of `steps` steps needs `warmup_steps` > 0 (tracing is not a training cost)."
        )
    settings = Levers(**(levers or {}))
    settings.apply_globally()
    import keras

    from benchmarks.flops import training_flops
    from simpsons_core.training.models import build_model

    keras.utils.set_random_seed(SEED)
    started = time.perf_counter()
    if pipeline == "legacy":
        from benchmarks.legacy_tutorial import compile_as_tutorial, tutorial_generator

        dataset = tutorial_generator(
            Path(data_dir) / "simpsons_trainset", image_size, settings.batch_size, SEED
        )
        epoch_steps, classes, images = len(dataset), dataset.num_classes, dataset.samples
        net = build_model(model, image_size, classes)
        compile_as_tutorial(net)
        net.jit_compile = settings.jit_compile
    else:
        dataset, epoch_steps, classes, images = project_or_memory_dataset(
            pipeline, Path(data_dir), image_size, settings
        )
        net = build_model(model, image_size, classes)
        settings.compile(net)
    prepared = time.perf_counter()
    clock = batch_clock()
    if warmup_steps:
        net.fit(dataset, epochs=1, steps_per_epoch=warmup_steps, verbose=0, callbacks=[clock])
        history = net.fit(
            dataset, epochs=1, steps_per_epoch=steps or epoch_steps, verbose=0, callbacks=[clock]
        )
        # From the measured fit's first batch (its iterator set-up is not a training cost) to its last: its
        # images but the first (full) batch.
        first = warmup_steps
        measured_images = (steps * settings.batch_size if steps else images) - settings.batch_size
    else:
        history = net.fit(dataset, epochs=2, steps_per_epoch=epoch_steps, verbose=0, callbacks=[clock])
        first, measured_images = epoch_steps - 1, images  # from the end of epoch 1 to the end of epoch 2
    if (steps or epoch_steps) < 2:
        raise ValueError(
            f"{steps or epoch_steps} steps are too few to time: use more images or a smaller batch."
        )
    (start_time, start_cpu), (end_time, end_cpu) = clock.times[first], clock.times[-1]
    result: dict[str, Any] = {
        "images_per_second": measured_images / (end_time - start_time),
        "cpu_ms_per_image": 1000 * (end_cpu - start_cpu) / measured_images,
        "first_epoch_seconds": None if warmup_steps else clock.times[epoch_steps - 1][0] - started,
        "prepare_seconds": prepared - started,
        "steps_per_epoch": epoch_steps,
        "images_per_epoch": images,
        "batch_size": settings.batch_size,
        "final_loss": float(history.history["loss"][-1]),
        "train_mflop": training_flops(net) / 1e6,
        "levers": settings.changes(),
    }
    if pipeline != "memory":
        result.update(input_alone(dataset, epoch_steps, images))
    if tf_profile_steps:
        result["op_time"] = profile_steps(net, dataset, tf_profile_steps)
    return result


def input_alone(dataset, steps: int, images: int) -> dict[str, float]:
    """The input pipeline without the model, over one epoch: its own images/s and CPU cost per image, which
    say how much of the machine the pipeline takes from the training step."""
    iterator = iter(dataset)
    next(iterator)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for _ in range(steps):
        next(iterator)
    return {
        "input_images_per_second": images / (time.perf_counter() - started),
        "input_cpu_ms_per_image": 1000 * (cpu_seconds() - cpu_started) / images,
    }


def project_or_memory_dataset(pipeline: str, data_dir: Path, image_size: int, settings: Levers):
    """(dataset, steps per epoch, number of classes, images per epoch) for the project's pipeline or for
    in-memory batches."""
    import tensorflow as tf

    from simpsons_core.config import TrainConfig
    from simpsons_core.data.decoding import decode_images
    from simpsons_core.data.folders import detect_layout
    from simpsons_core.data.pipeline import prepare_for_model, training_dataset

    layout = detect_layout(data_dir)
    config = TrainConfig(
        data_dir=str(data_dir), image_size=image_size, batch_size=settings.batch_size, seed=SEED
    )
    decoded = decode_images(layout.train, layout.classes, image_size)
    if pipeline == "project":
        dataset, steps = training_dataset(decoded, config)
        images = steps * min(settings.batch_size, len(decoded))  # every batch is full, across epochs
    elif pipeline == "memory":
        steps = len(decoded) // settings.batch_size
        images = steps * settings.batch_size  # whole batches only
        inputs = prepare_for_model(decoded.pixels, config.augment)
        dataset = (
            tf.data.Dataset.from_tensor_slices((inputs, decoded.labels))
            .batch(settings.batch_size, drop_remainder=True)
            .cache()
            .repeat()
            .prefetch(tf.data.AUTOTUNE)
        )
    else:
        raise ValueError(f"Unknown pipeline {pipeline!r}: legacy, project or memory.")
    if settings.tfdata_threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = settings.tfdata_threads
        dataset = dataset.with_options(options)
    return dataset, steps, len(layout.classes), images


def profile_steps(net, dataset, steps: int) -> dict[str, Any]:
    """Run `steps` more training steps under the TensorFlow profiler; op time by phase and op type."""
    import tempfile

    import tensorflow as tf

    from benchmarks.tf_profile import op_time_breakdown

    with tempfile.TemporaryDirectory(prefix="bench-tfprof-") as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        net.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        wall = time.perf_counter() - started
        tf.profiler.experimental.stop()
        breakdown = op_time_breakdown(Path(logdir))
    breakdown["wall_ms_per_step"] = 1000 * wall / steps
    breakdown["steps"] = steps
    return breakdown


def measure_accuracy(
    model: str, data_dir: str, epochs: int = 10, seed: int = SEED, levers: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train as a user would (validation split of the training folder, augmentation on); report accuracy."""
    settings = Levers(**(levers or {}))
    settings.apply_globally()
    import keras

    from simpsons_core.config import TrainConfig
    from simpsons_core.data.decoding import decode_images
    from simpsons_core.data.folders import detect_layout
    from simpsons_core.data.pipeline import evaluation_dataset, training_dataset
    from simpsons_core.data.splits import split_for_training
    from simpsons_core.training.models import build_model

    config = TrainConfig(
        data_dir=data_dir,
        model=model,
        epochs=epochs,
        batch_size=settings.batch_size,
        seed=seed,
        validation="split",
    )
    keras.utils.set_random_seed(seed)
    layout = detect_layout(data_dir)
    train_items, validation_items = split_for_training(layout, config)
    train, steps = training_dataset(decode_images(train_items, layout.classes, config.image_size), config)
    validation = evaluation_dataset(
        decode_images(validation_items, layout.classes, config.image_size), config
    )
    net = build_model(model, config.image_size, len(layout.classes))
    settings.compile(net)
    started = time.perf_counter()
    history = net.fit(train, validation_data=validation, epochs=epochs, steps_per_epoch=steps, verbose=0)
    accuracies = [float(a) for a in history.history["val_accuracy"]]
    return {
        "val_accuracy": accuracies[-1],
        "best_val_accuracy": max(accuracies),
        "validation_images": len(validation_items),
        "train_seconds": time.perf_counter() - started,
        "levers": settings.changes(),
    }
