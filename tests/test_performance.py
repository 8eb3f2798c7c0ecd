"""FusedAdam: the same training as Keras' Adam, in one fused kernel per weight tensor."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from simpsons_core.performance import FusedAdam


def _train_weights(optimizer: keras.optimizers.Optimizer, steps: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    weights = keras.Variable(rng.normal(size=(50, 20)).astype("float32"))
    gradients = [tf.constant(rng.normal(size=(50, 20)).astype("float32")) for _ in range(steps)]
    apply = tf.function(lambda gradient: optimizer.apply_gradients([(gradient, weights)]))
    for gradient in gradients:
        apply(gradient)
    return weights.numpy()


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_updates_like_keras_adam(amsgrad: bool) -> None:
    start = np.random.default_rng(0).normal(size=(50, 20)).astype("float32")
    expected = _train_weights(keras.optimizers.Adam(learning_rate=1e-2, amsgrad=amsgrad))
    fused = _train_weights(FusedAdam(learning_rate=1e-2, amsgrad=amsgrad))
    assert np.abs(expected - start).max() > 0.01  # the weights really moved
    np.testing.assert_allclose(fused, expected, atol=1e-5)


def test_a_model_trained_with_fused_adam_saves_and_loads(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=FusedAdam(learning_rate=5e-3), loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(1).normal(size=(32, 4)).astype("float32"), np.arange(32) % 3
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")

    loaded = keras.saving.load_model(tmp_path / "model.keras")

    assert isinstance(loaded.optimizer, FusedAdam)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(5e-3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    loaded.fit(x, y, epochs=1, verbose=0)  # and it goes on training
