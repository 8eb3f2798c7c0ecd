"""From decoded images (`decoding.decode_images`) to the batches a model trains and is evaluated on.

Training shuffles row indices into the decoded array and augments each batch on the fly with
`augment_batch`, so no file is read twice. Two tf.data traps measured with Keras 3.15 shape it: `.cache()`
after batching replays the first epoch's order forever (here the decoded array is the cache, before any
shuffling), and a fresh iterator per epoch stalls 0.5-1.6 s (so the training dataset repeats and Keras gets
`steps_per_epoch`).

Example:

    decoded = decode_images(layout.train, layout.classes, config.image_size)
    dataset, steps = training_dataset(decoded, config)
    model.fit(dataset, steps_per_epoch=steps, epochs=config.epochs)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from simpsons_core.config import GREY_WEIGHTS, AugmentConfig, ModelInput, TrainConfig
from simpsons_core.data.augment import augment_batch, augmentation_seed
from simpsons_core.data.decoding import DecodedImages


def training_dataset(images: DecodedImages, config: TrainConfig) -> tuple[tf.data.Dataset, int]:
    """An endless dataset of augmented training batches, and the number of batches in one epoch.

    The images stream as one shuffled order after another (shuffled with `config.seed`), cut into batches that
    run on across epoch boundaries: every batch is full, so the training step and the warp are compiled for
    one shape only (a smaller last batch would cost a second trace and XLA compile). Batch number `step`,
    counted from the start, is augmented with `augmentation_seed(config.seed, step)`, so runs repeat exactly
    and epochs differ. Yields (float32 [batch, size, size, 3] scaled by `config.augment.rescale`, int32
    [batch] labels).
    """
    count = len(images)
    if count == 0:
        raise ValueError("There are no training images: every file was skipped (see the warnings).")
    batch_size = min(config.batch_size, count)
    read = _batch_reader(images)

    @tf.autograph.experimental.do_not_convert  # tensor-free control flow; converting it slows the start
    def augment(step: tf.Tensor, rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, labels = read(rows)
        return augment_batch(pixels, config.augment, augmentation_seed(config.seed, step)), labels

    dataset = (
        tf.data.Dataset.range(count)
        .shuffle(count, seed=config.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .enumerate()
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, math.ceil(count / batch_size)


def evaluation_dataset(images: DecodedImages, config: TrainConfig) -> tf.data.Dataset:
    """One pass over the images in order, unaugmented, scaled as for training: (images, labels) batches."""
    read = _batch_reader(images)

    @tf.autograph.experimental.do_not_convert
    def scale(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, labels = read(rows)
        return prepare_for_model(pixels, config.augment), labels

    return (
        tf.data.Dataset.range(len(images))
        .batch(config.batch_size)
        .map(scale, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def prepare_for_model(pixels: np.ndarray | tf.Tensor, model_input: ModelInput | AugmentConfig) -> tf.Tensor:
    """uint8 RGB pixels [..., 3] to model input: one grey channel (`GREY_WEIGHTS`, on float pixels as
    Teachable Machine weighs them) for a greyscale input, then times `scale` plus `offset`. An AugmentConfig
    stands for the input of the run it trains: its rescale only, exactly `augment_batch` with every effect
    off."""
    values = tf.cast(pixels, tf.float32)
    if isinstance(model_input, AugmentConfig):
        return values * model_input.rescale
    if model_input.colour == "greyscale":
        values = tf.reduce_sum(values * tf.constant(GREY_WEIGHTS, tf.float32), axis=-1, keepdims=True)
    values = values * model_input.scale
    return values + model_input.offset if model_input.offset else values


def _batch_reader(images: DecodedImages) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """rows -> (uint8 pixels, int32 labels), in TensorFlow alone. A Python step in the pipeline
    (numpy_function, from_generator) can hang the process at exit, seen here: Python stops the threads that
    ask for the GIL while an iterator's destructor waits for the batch they were making."""
    pixels = _as_tensor(images.pixels)
    labels = tf.constant(images.labels, dtype=tf.int32)

    def read(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.gather(pixels, rows), tf.gather(labels, rows)

    return read


def _as_tensor(pixels: np.ndarray) -> tf.Tensor:
    """The pixels as a tensor. A file cache's memory map stays one (`ImmutableConst` maps the file), so a
    batch reads only its own rows and datasets bigger than RAM train."""
    if isinstance(pixels, np.memmap) and pixels.offset == 0 and pixels.size and pixels.flags.c_contiguous:
        return tf.raw_ops.ImmutableConst(
            dtype=tf.uint8, shape=pixels.shape, memory_region_name=str(pixels.filename)
        )
    return tf.convert_to_tensor(np.asarray(pixels, dtype=np.uint8))
