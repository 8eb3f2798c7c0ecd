"""The full-integer conversion refuses, naming the operation and what to export instead, a model that TFLite
cannot run in integers: whether the converter fails outright or leaves the operation in float."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from simpsons_core.config import ModelInput
from simpsons_core.inference.tflite import write_full_int8


class Sine(keras.layers.Layer):
    """TFLite runs Sin in float only: the converter keeps it in float between a dequantize and a quantize."""

    def call(self, x):
        return keras.ops.sin(x)


class Erf(keras.layers.Layer):
    """TFLite has no Erf kernel at all: the integer-only conversion fails."""

    def call(self, x):
        return keras.ops.erf(x)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (Sine(), "conversion left Sin in float (TFLite has no integer kernel)"),
        (Erf(), "conversion failed: TFLite has no kernel for Erf."),
    ],
)
def test_a_model_tflite_cannot_run_in_integers_is_refused_naming_the_operation(
    layer: keras.layers.Layer, message: str, tmp_path: Path
) -> None:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            layer,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    pixels = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="Export tflite-int8 instead") as refused:
        write_full_int8(model, ModelInput(size=8), pixels, tmp_path / "model.tflite")
    assert message in str(refused.value)
