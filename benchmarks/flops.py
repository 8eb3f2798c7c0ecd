"""Floating-point operations per image of a Keras model, from its layer shapes (one multiply-add = 2 FLOP).

Training costs the forward pass, the weight gradients (as much again) and the input gradients (as much
again) of every layer except the first weighted one, whose input needs no gradient. For the tutorial's network
at 64 px that gives about 108 MFLOP forward and 307 MFLOP trained per image. Elementwise work (activations,
pooling, batch norm, the optimizer's update) is left out: a few percent of the arithmetic, not of the time.
"""

from __future__ import annotations

import math

import keras


def weighted_layers(model: keras.Layer) -> list[tuple[keras.Layer, int]]:
    """(layer, forward FLOP per image) of every convolution and dense layer, nested models in order."""
    found: list[tuple[keras.Layer, int]] = []
    for layer in getattr(model, "layers", []):
        if getattr(layer, "layers", None):
            found.extend(weighted_layers(layer))
            continue
        flops = layer_flops(layer)
        if flops:
            found.append((layer, flops))
    return found


def layer_flops(layer: keras.Layer) -> int:
    """Forward FLOP per image of one layer; 0 for layers without matrix arithmetic."""
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        height, width = layer.output.shape[1:3]
        positions = height * width
        if isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw, channels_in, multiplier = layer.depthwise_kernel.shape
            depthwise = kh * kw * channels_in * multiplier
            return 2 * positions * (depthwise + channels_in * multiplier * layer.filters)
        return 2 * positions * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        tokens = math.prod(layer.output.shape[1:-1])
        return 2 * tokens * math.prod(layer.kernel.shape)
    return 0


def forward_flops(model: keras.Model) -> int:
    return sum(flops for _, flops in weighted_layers(model))


def training_flops(model: keras.Model) -> int:
    """Forward + weight gradients + input gradients (none for the first weighted layer)."""
    layers = weighted_layers(model)
    return sum(flops * (2 if index == 0 else 3) for index, (_, flops) in enumerate(layers))


def profiler_forward_flops(model: keras.Model, image_size: int) -> int:
    """TensorFlow's own count of the forward graph's float operations (includes bias adds and activations)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([1, image_size, image_size, 3], tf.float32)
    graph = convert_variables_to_constants_v2(
        tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    ).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, cmd="op", options=options).total_float_ops
