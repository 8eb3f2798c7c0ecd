"""LiteRT/TFLite exports: the full-integer conversion, and running any `.tflite` export as its user would.

Full-integer (`tflite-full-int8`) is what microcontrollers (TFLite Micro) and Coral's Edge TPU compiler take:
every operation an integer kernel (`TFLITE_BUILTINS_INT8`), a fixed batch of one, and uint8 in and out. The
run's preprocessing (times `scale` plus `offset`) is put inside the graph, so its input is the picture's pixel
values as a camera gives them (0-255, one channel for a greyscale model) and, since calibration spans 0-255,
its input quantisation is the identity: scale 1, zero point 0. Activation ranges are calibrated on real
training images (the representative dataset). The softmax output is uint8 with scale 1/256: probability =
scale x (q - zero point). Both are read back from the converted file and recorded, never assumed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simpsons_core.config import ModelInput
from simpsons_core.tf_notices import without_known_notices

if TYPE_CHECKING:
    import keras

# Training images the full-integer activation ranges are calibrated on: a few hundred, as LiteRT advises.
CALIBRATION_IMAGES = 300
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)
# The converter's own float <-> integer steps around an operation it left in float.
_CONVERSIONS = {"tfl.dequantize", "tfl.quantize"}
_INSTEAD = (
    "Export tflite-int8 instead (int8 weights, float activations, TensorFlow's own kernels where TFLite has "
    "none), or replace that layer with one that TFLite runs in integers."
)


@dataclass(frozen=True)
class Quantisation:
    """How an integer tensor of a quantised model maps to real values: real = scale x (q - zero_point).

    Attributes:
        dtype: the tensor's element type ("uint8").
        shape: its shape; a full-integer export takes a fixed batch of one.
        scale, zero_point: the affine map above.
    """

    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @classmethod
    def of(cls, detail: dict[str, Any]) -> Quantisation:
        """From an interpreter's input or output detail."""
        scale, zero_point = detail["quantization"]
        return cls(np.dtype(detail["dtype"]).name, tuple(int(n) for n in detail["shape"]), scale, zero_point)

    def describe(self) -> str:
        return f"{self.dtype} {list(self.shape)}, real = {self.scale:.10g} x (q - {self.zero_point})"


def pixel_values(pixels: np.ndarray, model_input: ModelInput) -> np.ndarray:
    """uint8 RGB pixels [N, S, S, 3] (from `Predictor.load`) -> what the full-integer export takes: uint8
    pixel values [N, S, S, C], one grey channel (rounded) for a greyscale model."""
    from simpsons_core.data.pipeline import prepare_for_model

    values = np.asarray(prepare_for_model(pixels, replace(model_input, scale=1.0, offset=0.0)))
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def write_full_int8(model: keras.Model, model_input: ModelInput, pixels: np.ndarray, target: Path) -> None:
    """Convert `model`, with `model_input`'s scaling in front, to a full-integer `.tflite` at `target`,
    calibrated on `pixels` (uint8 RGB [N, S, S, 3], from `Predictor.load`).

    One more calibration frame, the first picture with one black and one white pixel, makes the input's
    range exactly 0-255 whatever the pictures hold, hence an input quantisation of scale 1, zero point 0.

    Raises:
        ValueError: the converter failed (its reason, and what to try instead), or its result still holds
            float tensors.
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    values = pixel_values(pixels, model_input)
    full_range = values[0].copy()
    full_range.reshape(-1, model_input.channels)[:2] = [[0], [255]]
    size, channels = model_input.size, model_input.channels

    def representative() -> Iterator[list[np.ndarray]]:
        for frame in (full_range, *values):
            yield [frame[np.newaxis].astype(np.float32)]

    try:
        with without_known_notices():
            _with_scaling(model, model_input).export(
                str(target),
                format="litert",
                verbose=False,
                input_signature=[tf.TensorSpec([1, size, size, channels], tf.float32)],
                optimizations=[tf.lite.Optimize.DEFAULT],
                representative_dataset=representative,
                target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
                inference_input_type=tf.uint8,
                inference_output_type=tf.uint8,
            )
    except (ConverterError, RuntimeError, ValueError) as error:
        unsupported = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op", str(error))))
        reason = (
            f"TFLite has no kernel for {', '.join(unsupported)}"
            if unsupported
            else " ".join(str(error).split())[:400]
        )
        raise ValueError(f"The full-integer TFLite conversion failed: {reason}. {_INSTEAD}") from error
    if floats := float_tensors(target):
        names = {name.split(";")[0].rsplit("/", 1)[-1] for name in floats}
        operations = sorted(names - _CONVERSIONS) or floats
        raise ValueError(
            f"The full-integer TFLite conversion left {', '.join(operations)} in float (TFLite has no "
            f"integer kernel), which a microcontroller or Coral board cannot run. {_INSTEAD}"
        )


def _with_scaling(model: keras.Model, model_input: ModelInput) -> keras.Model:
    """`model` behind a layer applying the run's scaling: raw pixel values in, probabilities out."""
    import keras

    return keras.Sequential(
        [
            keras.Input((model_input.size, model_input.size, model_input.channels), name="pixels"),
            keras.layers.Rescaling(model_input.scale, model_input.offset, name="scaling"),
            model,
        ],
        name=f"{model.name}_on_pixels",
    )


def interpreter(path: Path) -> Any:
    """LiteRT's own interpreter (`ai_edge_litert`) when installed, else TensorFlow's deprecated copy."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings(), without_known_notices():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return Interpreter(model_path=str(path))


def quantisation(path: Path) -> tuple[Quantisation, Quantisation]:
    """The (input, output) quantisation of a `.tflite` file with one input and one output."""
    loaded = interpreter(path)
    [source], [result] = loaded.get_input_details(), loaded.get_output_details()
    return Quantisation.of(source), Quantisation.of(result)


def float_tensors(path: Path) -> list[str]:
    """The names of a `.tflite` file's float tensors; none in a full-integer model."""
    return [
        detail["name"]
        for detail in interpreter(path).get_tensor_details()
        if detail["dtype"] in _FLOAT_DTYPES
    ]


def tflite_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function running a `.tflite` file as its user would: real input values [N, ...] -> float32 outputs.

    A quantised input is quantised with the file's own scale and zero point (for a full-integer export, pixel
    values pass unchanged) and a quantised output dequantised. A model with a fixed batch of one (a
    full-integer export) runs the images one by one. Tensors are reallocated only when the input shape
    changes, so repeated single-image calls measure the model, not the allocation.
    """
    loaded = interpreter(path)
    [source], [result] = loaded.get_input_details(), loaded.get_output_details()
    one_at_a_time = int(source["shape_signature"][0]) == 1
    allocated: list[tuple[int, ...]] = []

    def invoke(x: np.ndarray) -> np.ndarray:
        if allocated != [x.shape]:
            loaded.resize_tensor_input(source["index"], list(x.shape))
            with without_known_notices():  # the XNNPACK delegate announces itself when tensors are allocated
                loaded.allocate_tensors()
            allocated[:] = [x.shape]
        loaded.set_tensor(source["index"], _quantised(x, source))
        loaded.invoke()
        return _real(loaded.get_tensor(result["index"]), result)

    def run(x: np.ndarray) -> np.ndarray:
        if one_at_a_time:
            return np.concatenate([invoke(x[i : i + 1]) for i in range(len(x))])
        return invoke(x)

    return run


def _quantised(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.kind == "f" or not scale:
        return np.asarray(x, dtype=dtype)
    limits = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float32) / scale) + zero_point
    return np.clip(q, limits.min, limits.max).astype(dtype)


def _real(q: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind == "f" or not scale:
        return np.asarray(q, np.float32).copy()
    return (q.astype(np.float32) - zero_point) * np.float32(scale)
