"""Importing the tutorial's Keras 2 `simpsons_weights.h5`, written here in Keras 2's exact HDF5 layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from simpsons_core.cli.main import main
from simpsons_core.inference.import_weights import import_weights, parse_labels
from simpsons_core.inference.predict import Predictor
from simpsons_core.run.lookup import resolve_run

LABELS = ["bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson"]
# Layer names as a fresh Keras 2 session named the tutorial's Sequential layers.
KERAS2_NAMES = [
    "conv2d_1",
    "max_pooling2d_1",
    "conv2d_2",
    "max_pooling2d_2",
    "flatten_1",
    "dense_1",
    "dense_2",
]


@pytest.fixture(scope="module")
def tutorial_network():
    """The tutorial's network at 64 px with seeded random weights: the model the file is made from."""
    import keras

    from simpsons_core.training.models import build_model

    keras.utils.set_random_seed(3)
    return build_model("tutorial", 64, len(LABELS))


def write_keras2_weights(path: Path, model, whole_model: bool = False) -> Path:
    """What Keras 2's `model.save_weights("x.h5")` writes (`model.save` nests it under model_weights)."""
    with h5py.File(path, "w") as handle:
        group = handle.create_group("model_weights") if whole_model else handle
        group.attrs["layer_names"] = np.array([name.encode() for name in KERAS2_NAMES])
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.1.5"
        for name, layer in zip(KERAS2_NAMES, model.layers, strict=True):
            layer_group = group.create_group(name)
            arrays = layer.get_weights()
            weight_names = [f"{name}/{kind}:0" for kind in ("kernel", "bias")][: len(arrays)]
            layer_group.attrs["weight_names"] = np.array([w.encode() for w in weight_names])
            for weight_name, array in zip(weight_names, arrays, strict=True):
                layer_group.create_dataset(weight_name, data=array)
    return path


@pytest.mark.parametrize("whole_model", [False, True], ids=["save_weights", "model.save"])
def test_imported_run_predicts_like_the_original(
    workspace: Path, tmp_path: Path, tutorial_network, tiny_dataset: Path, whole_model: bool
) -> None:
    weights = write_keras2_weights(tmp_path / "simpsons_weights.h5", tutorial_network, whole_model)
    run_id = import_weights(weights, LABELS)
    info = resolve_run(run_id)
    assert info.state == "completed"
    config = info.train_config()
    assert (config.recipe, config.model, config.image_size) == ("tutorial", "tutorial", 64)
    assert config.augment.rescale == pytest.approx(1 / 255)
    assert info.labels == LABELS
    predictor = Predictor.from_run(run_id)
    images = sorted((tiny_dataset / "simpson_testset").rglob("*.jpg"))[:6]
    pixels = np.stack([predictor.load(path) for path in images])
    expected = tutorial_network.predict_on_batch(pixels.astype(np.float32) / 255)
    np.testing.assert_allclose(predictor.probabilities(pixels), expected, atol=1e-6)


def test_cli_import_then_evaluate_on_a_folder(
    workspace: Path, tmp_path: Path, tutorial_network, tiny_dataset, capsys
):
    weights = write_keras2_weights(tmp_path / "simpsons_weights.h5", tutorial_network)
    assert main(["import-weights", str(weights), "--labels", ",".join(LABELS), "--name", "seed"]) == 0
    run_id = capsys.readouterr().out.split("as run ")[1].strip()
    assert run_id.endswith("-seed")
    assert main(["evaluate", run_id, "--data", str(tiny_dataset)]) == 0
    assert "24 images, accuracy" in capsys.readouterr().out
    assert main(["evaluate", run_id]) == 2  # imported without a dataset: no test split to find
    assert "--data DIR" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "labels", "message"),
    [
        ("tutorial", LABELS[:3], "4 outputs but 3 labels"),
        ("text", LABELS, "not an HDF5 file"),
        ("keras3", LABELS, "not in the Keras 2 weights layout"),
        ("other-network", LABELS, "not the tutorial's network"),
    ],
)
def test_wrong_files_get_clear_messages(tmp_path: Path, tutorial_network, content, labels, message) -> None:
    path = tmp_path / "weights.h5"
    if content == "tutorial":
        write_keras2_weights(path, tutorial_network)
    elif content == "text":
        path.write_text("not hdf5")
    elif content == "keras3":
        with h5py.File(path, "w") as handle:
            handle.create_group("layers/conv2d/vars").create_dataset("0", data=np.zeros(3))
    else:
        with h5py.File(path, "w") as handle:
            handle.attrs["layer_names"] = np.array([b"dense_1"])
            layer = handle.create_group("dense_1")
            layer.attrs["weight_names"] = np.array([b"dense_1/kernel:0", b"dense_1/bias:0"])
            layer.create_dataset("dense_1/kernel:0", data=np.zeros((8, 4)))
            layer.create_dataset("dense_1/bias:0", data=np.zeros(4))
    with pytest.raises(ValueError, match=message):
        import_weights(path, labels)


def test_labels_are_parsed_and_checked() -> None:
    assert parse_labels(" bart_simpson, homer_simpson ,lisa_simpson,") == LABELS[:3]
    for bad in ("bart_simpson", "a,a"):
        with pytest.raises(ValueError, match="distinct"):
            parse_labels(bad)
