"""fused_adam: the same training as Keras' Adam, in one fused kernel per weight, saved as plain Adam."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from simpsons_core.training.models import build_model, compile_model
from simpsons_core.training.optimizer import fused_adam


def _train_weights(optimizer: keras.optimizers.Optimizer, steps: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    weights = keras.Variable(rng.normal(size=(50, 20)).astype("float32"))
    gradients = [tf.constant(rng.normal(size=(50, 20)).astype("float32")) for _ in range(steps)]
    apply = tf.function(lambda gradient: optimizer.apply_gradients([(gradient, weights)]))
    for gradient in gradients:
        apply(gradient)
    return weights.numpy()


def _op_types(optimizer: keras.optimizers.Optimizer) -> set[str]:
    """The TensorFlow op types of one traced update of a small weight matrix."""
    weights = keras.Variable(np.zeros((4, 3), "float32"))
    apply = tf.function(lambda gradient: optimizer.apply_gradients([(gradient, weights)]))
    graph = apply.get_concrete_function(tf.TensorSpec((4, 3), tf.float32)).graph
    types = {op.type for op in graph.get_operations()}
    for function in graph.as_graph_def().library.function:  # ops inside nested functions (conditionals)
        types.update(node.op for node in function.node_def)
    return types


def test_fused_adam_updates_like_keras_adam() -> None:
    start = np.random.default_rng(0).normal(size=(50, 20)).astype("float32")
    expected = _train_weights(keras.optimizers.Adam(learning_rate=1e-2))
    fused = _train_weights(fused_adam(1e-2))
    assert np.abs(expected - start).max() > 0.01  # the weights really moved
    np.testing.assert_allclose(fused, expected, atol=1e-5)


def test_fused_adam_runs_one_fused_kernel_where_keras_runs_many_ops() -> None:
    assert "ResourceApplyAdam" in _op_types(fused_adam(1e-2))
    assert "ResourceApplyAdam" not in _op_types(keras.optimizers.Adam(1e-2))


def test_fused_adam_follows_a_learning_rate_schedule_like_keras_adam() -> None:
    def schedule() -> keras.optimizers.schedules.LearningRateSchedule:
        return keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=6)

    expected = _train_weights(keras.optimizers.Adam(learning_rate=schedule()))
    np.testing.assert_allclose(_train_weights(fused_adam(schedule())), expected, atol=1e-5)


def test_training_compiles_models_with_the_fused_update() -> None:
    model = build_model("compact", 32, 3)
    compile_model(model, 1e-3)
    assert "ResourceApplyAdam" in _op_types(model.optimizer)


def test_a_model_trained_with_fused_adam_saves_as_plain_adam(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=fused_adam(5e-3), loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(1).normal(size=(32, 4)).astype("float32"), np.arange(32) % 3
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")

    loaded = keras.saving.load_model(tmp_path / "model.keras")

    assert type(loaded.optimizer) is keras.optimizers.Adam  # loads in any Keras, without simpsons_core
    assert float(loaded.optimizer.learning_rate) == pytest.approx(5e-3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    loaded.fit(x, y, epochs=1, verbose=0)  # and it goes on training
