"""Training-speed settings measured by `make bench` (see benchmarks/reports/latest.md).

Keras 3's Adam updates each weight tensor with about ten separate elementwise TensorFlow ops, every one a
full pass over the tensor in memory. The tutorial network keeps 10.8 M weights in one Dense layer, so on a CPU
those passes are a third of a training step at batch 32 (TensorFlow profiler, benchmark section 2).
`FusedAdam` does the same update with TensorFlow's single fused kernel, `ResourceApplyAdam`: one pass, the
same arithmetic.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="simpsons_core")
class FusedAdam(keras.optimizers.Adam):
    """Adam with TensorFlow's fused update kernel; the same updates as `keras.optimizers.Adam` (to float
    rounding), with the same arguments and config, so a saved model records it and loads it back.

    The fused kernel is used for plain Adam on float variables outside a multi-device strategy; AMSGrad and
    distributed variables take Keras' own update.

    Example:

    ```python
    model.compile(optimizer=FusedAdam(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    ```
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or tf.distribute.has_strategy() or not isinstance(variable, tf.Variable):
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
