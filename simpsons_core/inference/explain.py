"""Grad-CAM: which parts of a picture made the model choose a class.

The gradient of the class score with respect to the last convolutional feature map, averaged per channel,
weighs that map's channels; their positive sum is the heatmap (Selvaraju et al., 2017; the keras-io Grad-CAM
example). The score is the class *logit* when the model ends in a softmax, because a softmax probability
saturates near 1 and its gradients vanish, which would leave the heatmap of a confident prediction empty.
"""

from __future__ import annotations

import io
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from simpsons_core.data.images import ImageSource, centre_square, open_rgb

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from simpsons_core.inference.predict import Predictor

_SKIPPED_AFTER_CONV = ("Pooling", "Dropout")
# The overlay's shorter side at least: a 128x72 frame's heatmap is too small to read at its own size.
MIN_OVERLAY_SIDE = 256
_FEATURE_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Explanation:
    """A heatmap for one picture and one class.

    Attributes:
        class_name: the class the heatmap explains.
        predicted: the class the model predicts for the picture.
        probabilities: class name -> probability.
        heatmap: float32 [S, S] in [0, 1], the size of the model input; 1 marks the most important region.
        overlay: the picture with the heatmap blended over it (RGB), its shorter side at least
            `MIN_OVERLAY_SIDE` pixels.
    """

    class_name: str
    predicted: str
    probabilities: dict[str, float]
    heatmap: np.ndarray
    overlay: Image.Image


def last_conv_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer whose output is the last spatial feature map: the last convolution, or the normalisation
    or activation right after it (not a pooling or dropout after it: Grad-CAM wants the conv output)."""
    layers = list(model.layers)
    convs = [i for i, layer in enumerate(layers) if "Conv" in type(layer).__name__]
    if not convs:
        raise ValueError(
            f"Model {model.name!r} has no convolution layer at the top level; Grad-CAM needs one."
        )
    chosen = layers[convs[-1]]
    for layer in layers[convs[-1] + 1 :]:
        if len(layer.output.shape) != 4 or any(word in type(layer).__name__ for word in _SKIPPED_AFTER_CONV):
            break
        chosen = layer
    return chosen


def _feature_and_score_model(model: keras.Model) -> tuple[keras.Model, Callable[[tf.Tensor], tf.Tensor]]:
    """A model from the input to (last conv feature map, head input), and the function turning the head input
    into class scores: logits when the model ends in a softmax, else its outputs as they are. Built once per
    model (building calls the layers again, which a long-lived dashboard must not repeat per picture)."""
    import keras

    if model in _FEATURE_MODELS:
        return _FEATURE_MODELS[model]
    conv, head = last_conv_layer(model), model.layers[-1]
    if isinstance(model, keras.Sequential):
        # A Sequential model loaded from a file keeps its layers' first graph apart from `model.inputs`, so
        # `layer.output` would not lead to the output; one fresh pass through the layers connects them.
        inputs = x = keras.Input(model.input_shape[1:])
        for layer in model.layers[:-1]:
            x = layer(x)
            if layer is conv:
                features = x
        head_input, outputs = x, head(x)
    else:
        inputs, features, head_input, outputs = model.inputs, conv.output, head.input, model.outputs[0]
    softmax_head = getattr(head, "activation", None) is keras.activations.softmax
    if softmax_head and isinstance(head, keras.layers.Dense):
        built = keras.Model(inputs, [features, head_input]), lambda x: _dense_logits(head, x)
    elif softmax_head and isinstance(head, keras.layers.Activation):
        built = keras.Model(inputs, [features, head_input]), lambda x: x
    else:
        built = keras.Model(inputs, [features, outputs]), lambda x: x
    _FEATURE_MODELS[model] = built
    return built


def _dense_logits(dense: keras.layers.Dense, x: tf.Tensor) -> tf.Tensor:
    """A softmax Dense layer's logits (Teachable Machine's last layer has no bias)."""
    logits = x @ dense.kernel
    return logits + dense.bias if dense.use_bias else logits


def grad_cam(model: keras.Model, inputs: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Grad-CAM heatmap for one model-ready input ([S, S, C] or [1, S, S, C], already scaled).

    Args:
        model: a Keras classifier with at least one convolution layer at its top level.
        inputs: the preprocessed image, exactly as the model takes it.
        class_index: the class to explain; None explains the predicted class.

    Returns:
        float32 [S, S] in [0, 1] (all zeros when no region speaks for the class).
    """
    import tensorflow as tf

    batch = tf.convert_to_tensor(np.asarray(inputs, np.float32).reshape((1, *model.input_shape[1:])))
    feature_model, to_scores = _feature_and_score_model(model)
    with tf.GradientTape() as tape:
        features, head_input = feature_model(batch, training=False)
        scores = to_scores(head_input)
        if class_index is None:
            class_index = int(tf.argmax(scores[0]))
        score = scores[:, class_index]
    weights = tf.reduce_mean(tape.gradient(score, features), axis=(0, 1, 2))
    cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1))
    cam = tf.image.resize(cam[..., tf.newaxis], model.input_shape[1:3], method="bilinear")[..., 0].numpy()
    peak = float(cam.max())
    heatmap = cam / peak if np.isfinite(peak) and peak > 0 else np.zeros_like(cam)
    return np.clip(np.nan_to_num(heatmap), 0.0, 1.0).astype(np.float32)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] heatmap -> uint8 RGB, dark blue (cold) through green and yellow to red (hot), like "jet"."""
    x = np.clip(heatmap, 0.0, 1.0)[..., np.newaxis]
    red = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (np.concatenate([red, green, blue], axis=-1) * 255).astype(np.uint8)


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The heatmap, coloured and stretched to the picture's size, blended over it."""
    image = image.convert("RGB")
    colours = Image.fromarray(colorize(heatmap)).resize(image.size, Image.Resampling.BILINEAR)
    return Image.blend(image, colours, alpha)


def explain(
    predictor: Predictor, source: ImageSource, class_name: str | None = None, max_side: int = 512
) -> Explanation:
    """Grad-CAM for `source` through `predictor`'s model and preprocessing, for `class_name` or the predicted
    class. The overlay is drawn on the upright original (its centre square for a model that sees only that),
    shrunk to at most `max_side` pixels a side or, when small, enlarged (smoothly, keeping its shape) to
    `MIN_OVERLAY_SIDE` pixels on its shorter side."""
    if class_name is not None and class_name not in predictor.labels:
        raise ValueError(f"Unknown class {class_name!r}; this model knows: {', '.join(predictor.labels)}.")
    source = rereadable(source)
    pixels = predictor.load(source)[np.newaxis]
    row = predictor.probabilities(pixels)[0]
    predicted = predictor.labels[int(np.argmax(row))]
    chosen = class_name or predicted
    heatmap = grad_cam(predictor.model, predictor.model_inputs(pixels), predictor.labels.index(chosen))
    picture = open_rgb(rereadable(source))
    if predictor.input.fit == "centre-crop":
        picture = picture.crop(centre_square(picture.size))
    picture.thumbnail((max_side, max_side))
    if (shorter := min(picture.size)) < MIN_OVERLAY_SIDE:
        scale = MIN_OVERLAY_SIDE / shorter
        picture = picture.resize(
            (
                max(MIN_OVERLAY_SIDE, round(picture.width * scale)),
                max(MIN_OVERLAY_SIDE, round(picture.height * scale)),
            ),
            Image.Resampling.LANCZOS,
        )
    probabilities = dict(zip(predictor.labels, map(float, row), strict=True))
    return Explanation(chosen, predicted, probabilities, heatmap, overlay(picture, heatmap))


def rereadable(source: ImageSource) -> ImageSource:
    """A file object (an upload) can be read once; its bytes, named like it, can be read again."""
    if hasattr(source, "read") and not isinstance(source, Image.Image):
        if hasattr(source, "seek"):
            source.seek(0)
        data = io.BytesIO(source.read())
        data.name = getattr(source, "name", None) or "the image"
        return data
    return source
