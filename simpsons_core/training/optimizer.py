"""Training-speed settings measured by `make bench` (see benchmarks/reports/amd-epyc-avx2/latest.md).

Keras 3's Adam updates each weight tensor with about ten separate elementwise TensorFlow ops, every one a
full pass over the tensor in memory. The tutorial network keeps 10.8 M weights in one Dense layer, so on a CPU
those passes are a third of a training step at batch 32 (TensorFlow profiler, benchmark section 2).
`fused_adam` does the same update with TensorFlow's single fused kernel, `ResourceApplyAdam`: one pass, the
same arithmetic.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf


def fused_adam(
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
) -> keras.optimizers.Adam:
    """Keras' Adam whose per-weight update runs TensorFlow's fused kernel: the same updates as
    `keras.optimizers.Adam` to float rounding, about a third less CPU per tutorial training step.

    Why an instance of Adam and not a subclass: a saved `.keras` file records the optimizer's class, and a
    plain Adam loads in any Keras, without this package. The fused kernel serves plain Adam on float
    variables outside a multi-device strategy; AMSGrad and distributed variables take Keras' own update.

    Example:

    ```python
    model.compile(optimizer=fused_adam(1e-3), loss="sparse_categorical_crossentropy")
    ```
    """
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    optimizer.update_step = types.MethodType(_fused_update_step, optimizer)
    return optimizer


def _fused_update_step(
    optimizer: keras.optimizers.Adam, gradient: tf.Tensor, variable: tf.Variable, learning_rate: tf.Tensor
) -> None:
    if optimizer.amsgrad or tf.distribute.has_strategy() or not isinstance(variable, tf.Variable):
        keras.optimizers.Adam.update_step(optimizer, gradient, variable, learning_rate)
        return
    dtype = variable.dtype
    step = tf.cast(optimizer.iterations + 1, dtype)
    index = optimizer._get_variable_index(variable)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=optimizer._momentums[index].value.handle,
        v=optimizer._velocities[index].value.handle,
        beta1_power=tf.pow(tf.cast(optimizer.beta_1, dtype), step),
        beta2_power=tf.pow(tf.cast(optimizer.beta_2, dtype), step),
        lr=tf.cast(learning_rate, dtype),
        beta1=tf.cast(optimizer.beta_1, dtype),
        beta2=tf.cast(optimizer.beta_2, dtype),
        epsilon=tf.cast(optimizer.epsilon, dtype),
        grad=tf.cast(gradient, dtype),
    )
