"""Training only a head on frozen features, Teachable Machine's way: the frozen part of the network runs once
per picture, not once per picture per epoch.

A model qualifies when every weight before its head (the layers from `HEAD_INPUT` on: dropout and the softmax
Dense) is frozen, as in `lite0-frozen`. Its features are then computed once for `FEATURE_PASSES` augmented
views of each training image (the pipeline's own augmentation, so the head still sees varied pictures) and
once for each validation image; the head trains on those vectors in seconds. The head shares its layers with
the full model, so saving the full model saves the trained head inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simpsons_core.data.images import CountProgress

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

HEAD_INPUT = "dropout"  # the first layer of the head; everything before it must be frozen
HEAD_OUTPUT = "predictions"
FEATURE_PASSES = 3  # augmented views of each training image whose features are kept


@dataclass
class FeatureTraining:
    """What `fit` gets instead of the full model and the image pipeline.

    Attributes:
        head: the head as its own model (sharing its layers with the full model), uncompiled.
        train: an endless dataset of shuffled (feature, label) batches.
        steps: batches in one epoch (one pass over every kept view).
        validation: (feature, label) batches of the validation images.
    """

    head: keras.Model
    train: tf.data.Dataset
    steps: int
    validation: tf.data.Dataset


def trains_only_its_head(model: keras.Model) -> bool:
    """Whether every weight before the head is frozen (and the model has the head this module expects)."""
    names = [layer.name for layer in model.layers]
    if HEAD_INPUT not in names or names[-1] != HEAD_OUTPUT:
        return False
    body = model.layers[: names.index(HEAD_INPUT)]
    return not any(layer.trainable_weights for layer in body)


def precompute(
    model: keras.Model,
    train: tf.data.Dataset,
    steps: int,
    validation: tf.data.Dataset,
    batch_size: int,
    seed: int,
    report: CountProgress,
) -> FeatureTraining:
    """Run the frozen body over `FEATURE_PASSES` epochs of the augmented training batches and over the
    validation batches once; `report(done, total)` counts batches."""
    import keras
    import tensorflow as tf

    body = keras.Model(model.inputs, model.get_layer(HEAD_INPUT).input, name="frozen_features")
    features = keras.Input(shape=body.output.shape[1:], name="features")
    x = features
    for layer in model.layers[[layer.name for layer in model.layers].index(HEAD_INPUT) :]:
        x = layer(x)
    head = keras.Model(features, x, name="head")

    total = steps * FEATURE_PASSES + sum(1 for _ in validation)
    done = 0

    def run_body(batches: tf.data.Dataset, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        nonlocal done
        vectors, labels = [], []
        for images, batch_labels in batches.take(count) if count else batches:
            vectors.append(np.asarray(body(images, training=False), dtype=np.float32))  # bfloat16 if mixed
            labels.append(np.asarray(batch_labels))
            done += 1
            report(done, total)
        return np.concatenate(vectors), np.concatenate(labels)

    train_x, train_y = run_body(train, steps * FEATURE_PASSES)
    val_x, val_y = run_body(validation)
    batch = min(batch_size, len(train_x))
    train_ds = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .shuffle(len(train_x), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_ds = tf.data.Dataset.from_tensor_slices((val_x, val_y)).batch(batch_size)
    return FeatureTraining(head, train_ds, -(-len(train_x) // batch), val_ds)
