"""The two networks: the tutorial's exactly as described, and compact's shape and size."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from simpsons_core.training.models import build_model, compile_model  # noqa: E402


def tutorial_parameter_count(size: int, classes: int) -> int:
    """By hand from the tutorial's description: valid 5x5 convolutions, 2x2 pooling, Dense 1000, Dense N."""
    conv1 = 5 * 5 * 3 * 32 + 32
    side = (size - 4) // 2  # conv 5x5 valid, then pool 2x2
    conv2 = 5 * 5 * 32 * 64 + 64
    side = (side - 4) // 2
    dense1 = side * side * 64 * 1000 + 1000
    dense2 = 1000 * classes + classes
    return conv1 + conv2 + dense1 + dense2


def test_tutorial_model_is_the_tutorials_network_layer_for_layer():
    model = build_model("tutorial", 64, 4)
    described = [
        (layer.__class__.__name__, layer.get_config())
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    assert [name for name, _ in described] == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    conv1, pool1, conv2, pool2, _, dense1, dense2 = (config for _, config in described)
    assert (conv1["filters"], tuple(conv1["kernel_size"]), tuple(conv1["strides"])) == (32, (5, 5), (1, 1))
    assert (conv2["filters"], tuple(conv2["kernel_size"]), tuple(conv2["strides"])) == (64, (5, 5), (1, 1))
    assert conv1["padding"] == conv2["padding"] == "valid"
    assert conv1["activation"] == conv2["activation"] == dense1["activation"] == "relu"
    for pool in (pool1, pool2):
        assert tuple(pool["pool_size"]) == (2, 2) and tuple(pool["strides"]) == (2, 2)
    assert dense1["units"] == 1000
    assert (dense2["units"], dense2["activation"]) == (4, "softmax")
    assert model.input_shape == (None, 64, 64, 3)
    assert model.count_params() == tutorial_parameter_count(64, 4) == 10_874_700


def test_tutorial_model_output_follows_the_number_of_classes_and_the_image_size():
    model = build_model("tutorial", 32, 3)
    assert model.output_shape == (None, 3)
    assert model.count_params() == tutorial_parameter_count(32, 3)


def test_compile_uses_adam_and_cross_entropy_on_class_indices():
    model = build_model("tutorial", 32, 4)
    compile_model(model, 0.002)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.002)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    # Sparse cross-entropy on indices is the tutorial's categorical cross-entropy on one-hot labels.
    probabilities = np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1]], dtype="float32")
    sparse = model.loss(np.array([0, 1]), probabilities)
    one_hot = keras.losses.CategoricalCrossentropy()(np.eye(4)[[0, 1]], probabilities)
    assert float(sparse) == pytest.approx(float(one_hot))


@pytest.mark.parametrize("size", [32, 64, 96])
def test_compact_model_takes_any_size_is_small_and_uses_modern_layers(size):
    model = build_model("compact", size, 5)
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 5)
    kinds = {layer.__class__.__name__ for layer in model.layers}
    assert {"BatchNormalization", "GlobalAveragePooling2D", "Dropout"} <= kinds
    # Global pooling: the same weights at every input size, a tenth of the tutorial's at its 64 px.
    assert model.count_params() == build_model("compact", 64, 5).count_params()
    assert model.count_params() < build_model("tutorial", 64, 5).count_params() / 10
    probabilities = model(
        np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32), training=False
    )
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, rtol=1e-5)


def test_models_do_not_rescale_their_input():
    """The pipeline rescales; a Rescaling layer here would scale twice."""
    for name in ("tutorial", "compact"):
        assert not any(isinstance(layer, keras.layers.Rescaling) for layer in build_model(name, 32, 4).layers)


def test_unknown_model_or_too_few_classes_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        build_model("resnet", 64, 4)
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_model("compact", 64, 1)
