"""The workaround that lets Keras 3's `model.fit` train under `tf.distribute.MultiWorkerMirroredStrategy`.

Upstream bug: keras-team/keras#20585 (seen in Keras 3.15.1 with TensorFlow 2.21). With more than one worker,
`fit` fails in two places of `keras/src/backend/tensorflow/trainer.py`:

1. `TensorFlowTrainer._maybe_symbolic_build` builds the model from a data batch averaged over the replicas
   (`strategy.reduce("MEAN", batch, axis=None)`): across workers that raises "Attempt to convert a value
   (PerReplica:...) with an unsupported type". Any one batch does for a build: the first local replica's.
2. `reduce_per_replica` averages each step's scalar loss and metrics over workers with
   `strategy.reduce("MEAN", value, axis=0)`, and a scalar has no axis 0. `axis=None` averages the values
   themselves, which is what a single machine's "mean" reduction does.

Remove this module (and the trainer's `with keras_fit_fixes(...)`) when tests/test_multiworker.py's
`test_keras_still_needs_the_multiworker_workaround` fails: it runs the unpatched Keras on two local workers
and fails as soon as Keras no longer raises there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer


@contextlib.contextmanager
def keras_fit_fixes(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Within the block, Keras' two functions above work across workers; afterwards they are Keras' own again.

    Does nothing unless `strategy` is a MultiWorkerMirroredStrategy over more than one worker, so every other
    strategy (and a one-worker cluster) runs Keras unchanged.
    """
    if not in_multi_worker_mode(strategy):
        yield
        return
    trainer_class = keras_tf_trainer.TensorFlowTrainer
    build, reduce = trainer_class._maybe_symbolic_build, keras_tf_trainer.reduce_per_replica

    def build_from_a_local_batch(model: Any, iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(
                    lambda value: model.distribute_strategy.experimental_local_results(value)[0],
                    next(batches),
                )
                break
        build(model, data_batch=data_batch)

    def reduce_scalars_whole(values: Any, strategy: tf.distribute.Strategy, reduction: str) -> Any:
        if reduction in ("auto", "mean") and in_multi_worker_mode(strategy):
            return keras.tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return reduce(values, strategy, reduction)

    trainer_class._maybe_symbolic_build = build_from_a_local_batch
    keras_tf_trainer.reduce_per_replica = reduce_scalars_whole
    try:
        yield
    finally:
        trainer_class._maybe_symbolic_build = build
        keras_tf_trainer.reduce_per_replica = reduce


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` spans several workers (where Keras' `fit` needs `keras_fit_fixes`)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.extended._in_multi_worker_mode()
    )
