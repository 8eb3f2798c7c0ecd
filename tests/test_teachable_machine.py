"""Importing Teachable Machine image models: the real exports in ../shared/fixtures/teachable-machine give the
probabilities TensorFlow.js gives (tests/fixtures/teachable_machine_reference.json, written by
scripts/teachable_machine_reference.mjs), a Keras export in Keras 2's `.h5` layout (`groups` on its
DepthwiseConv2D, which Keras 3 refuses) and a TF.js export made here give what an independently built Keras 3
network gives, bad exports are refused saying why, and an imported run works through predict, evaluate,
explain and export like a trained one."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from PIL import Image

from simpsons_core.cli.main import main
from simpsons_core.config import ModelInput
from simpsons_core.inference.export import EXPORT_FORMATS, export_run
from simpsons_core.inference.predict import Predictor
from simpsons_core.inference.teachable_machine import import_teachable_machine, read_export
from simpsons_core.run.lookup import read_run, resolve_run

FIXTURES = (
    Path(
        os.environ.get(
            "SIMPSONS_SHARED_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"
        )
    )
    / "teachable-machine"
)
REFERENCE = Path(__file__).parent / "fixtures" / "teachable_machine_reference.json"
needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "image-model.zip").is_file(),
    reason=f"the Teachable Machine fixtures are not here ({FIXTURES}; set SIMPSONS_SHARED_FIXTURES)",
)
TM_INPUT_32 = ModelInput(32, colour="rgb", fit="centre-crop", scale=1 / 127.5, offset=-1.0)
LABELS = ["Class 1", "Class 2", "Class 3"]


# --- A small Teachable Machine-shaped network, written here as TF.js and Keras 2 exports --------------------


def layer(kind: str, name: str, inbound: list[str] | None = None, **config: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"class_name": kind, "config": {"name": name, "trainable": True, **config}}
    if inbound is not None:
        spec["name"] = name
        spec["inbound_nodes"] = [[[source, 0, 0, {}] for source in inbound]] if inbound else []
    return spec


def base_model(functional: str) -> dict[str, Any]:
    """A MobileNet-like block as Teachable Machine's base models are written: a functional model with a
    residual Add, a tfjs-style one-element `axis` list, and Keras 2's `groups` on the DepthwiseConv2D."""
    conv = {"kernel_size": [3, 3], "padding": "same", "use_bias": False, "activation": "linear"}
    return {
        "class_name": functional,
        "config": {
            "name": "mobilenetv2_0.35_32",
            "layers": [
                layer("InputLayer", "input_1", [], batch_input_shape=[None, 32, 32, 3], dtype="float32"),
                layer("Conv2D", "Conv1", ["input_1"], filters=8, strides=[2, 2], **conv),
                layer("BatchNormalization", "bn_Conv1", ["Conv1"], axis=[3], epsilon=0.001),
                layer("ReLU", "Conv1_relu", ["bn_Conv1"], max_value=6),
                layer(
                    "DepthwiseConv2D", "block_depthwise", ["Conv1_relu"], groups=1, depth_multiplier=1, **conv
                ),
                layer(
                    "BatchNormalization", "block_depthwise_BN", ["block_depthwise"], axis=-1, epsilon=0.001
                ),
                layer("ReLU", "block_depthwise_relu", ["block_depthwise_BN"], max_value=6),
                layer(
                    "Conv2D",
                    "block_project",
                    ["block_depthwise_relu"],
                    filters=8,
                    **{**conv, "kernel_size": [1, 1]},
                ),
                layer("Add", "block_add", ["Conv1_relu", "block_project"]),
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["block_add", 0, 0]],
        },
    }


def topology(functional: str = "Model") -> dict[str, Any]:
    """Sequential[Sequential[base, pooling], Sequential[Dense 5 relu, Dense 3 softmax without bias]], as
    Teachable Machine nests its models (a list config, as tfjs-layers 1.x writes a Sequential's)."""
    features = [base_model(functional), layer("GlobalAveragePooling2D", "global_average_pooling2d_1")]
    head = [
        layer(
            "Dense", "dense_Dense1", units=5, activation="relu", use_bias=True, batch_input_shape=[None, 8]
        ),
        layer("Dense", "dense_Dense2", units=len(LABELS), activation="softmax", use_bias=False),
    ]
    return {
        "class_name": "Sequential",
        "config": [
            {"class_name": "Sequential", "config": features},
            {"class_name": "Sequential", "config": head},
        ],
    }


def random_weights(seed: int = 5) -> dict[str, np.ndarray]:
    """Weights by TF.js name, batch norm statistics included (variances positive)."""
    rng = np.random.default_rng(seed)
    shapes = {
        "Conv1/kernel": (3, 3, 3, 8),
        "block_depthwise/depthwise_kernel": (3, 3, 8, 1),
        "block_project/kernel": (1, 1, 8, 8),
        "dense_Dense1/kernel": (8, 5),
        "dense_Dense1/bias": (5,),
        "dense_Dense2/kernel": (5, len(LABELS)),
    }
    for bn in ("bn_Conv1", "block_depthwise_BN"):
        shapes |= {f"{bn}/{kind}": (8,) for kind in ("gamma", "beta", "moving_mean", "moving_variance")}
    weights = {name: rng.normal(0, 0.5, shape).astype(np.float32) for name, shape in shapes.items()}
    for bn in ("bn_Conv1", "block_depthwise_BN"):
        weights[f"{bn}/moving_variance"] = np.abs(weights[f"{bn}/moving_variance"]) + 0.5
    return weights


def write_tfjs_export(
    folder: Path, weights: dict[str, np.ndarray], labels: list[str] = LABELS, **weight_fields: Any
) -> Path:
    """model.json (batch norm statistics last, as TF.js orders them), weights.bin, metadata.json."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(weights, key=lambda name: "moving_" in name)
    specs = [
        {"name": name, "shape": list(weights[name].shape), "dtype": "float32", **weight_fields}
        for name in names
    ]
    manifest = [{"paths": ["weights.bin"], "weights": specs}]
    (folder / "model.json").write_text(json.dumps({"modelTopology": topology(), "weightsManifest": manifest}))
    (folder / "weights.bin").write_bytes(b"".join(weights[name].astype("<f4").tobytes() for name in names))
    (folder / "metadata.json").write_text(json.dumps({"labels": labels, "tmVersion": "2.4.10"}))
    return folder


def write_keras2_h5(path: Path, weights: dict[str, np.ndarray]) -> Path:
    """What an old Keras's `model.save("keras_model.h5")` wrote for that network: the model_config attribute
    (Keras 2's JSON, `groups` included) and weights grouped by top-level layer, named `<layer>/<weight>:0`."""
    config = {"class_name": "Sequential", "config": {"name": "sequential_4", "layers": []}}
    outer = topology("Functional")["config"]
    names = ["sequential_1", "sequential_3"]
    config["config"]["layers"] = [
        {"class_name": "Sequential", "config": {"name": name, "layers": inner["config"]}}
        for name, inner in zip(names, outer, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(config).encode()
        handle.attrs["keras_version"] = b"2.4.0"
        handle.attrs["backend"] = b"tensorflow"
        group = handle.create_group("model_weights")
        group.attrs["layer_names"] = np.array([name.encode() for name in names])
        for name in names:
            owned = [w for w in weights if w.startswith("dense_") == (name == "sequential_3")]
            group.create_group(name).attrs["weight_names"] = np.array([f"{w}:0".encode() for w in owned])
            for w in owned:
                group[name].create_dataset(f"{w}:0", data=weights[w])
    (path.parent / "labels.txt").write_text("".join(f"{i} {label}\n" for i, label in enumerate(LABELS)))
    return path


def reference_network(weights: dict[str, np.ndarray]):
    """The same network built directly in Keras 3, weights set layer by layer: the independent expectation."""
    import keras
    from keras import layers

    conv = {"padding": "same", "use_bias": False}
    inputs = keras.Input((32, 32, 3))
    stem = layers.ReLU(6)(
        layers.BatchNormalization(epsilon=0.001, name="bn_Conv1")(
            layers.Conv2D(8, 3, strides=2, name="Conv1", **conv)(inputs)
        )
    )
    x = layers.DepthwiseConv2D(3, name="block_depthwise", **conv)(stem)
    x = layers.ReLU(6)(layers.BatchNormalization(epsilon=0.001, name="block_depthwise_BN")(x))
    x = layers.Add()([stem, layers.Conv2D(8, 1, name="block_project", **conv)(x)])
    x = layers.Dense(5, activation="relu", name="dense_Dense1")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", use_bias=False, name="dense_Dense2")(x))
    order = {"Conv2D": ["kernel"], "DepthwiseConv2D": ["depthwise_kernel"], "Dense": ["kernel", "bias"]}
    order["BatchNormalization"] = ["gamma", "beta", "moving_mean", "moving_variance"]
    for item in model.layers:
        kinds = order.get(type(item).__name__, [])
        arrays = [weights[f"{item.name}/{kind}"] for kind in kinds if f"{item.name}/{kind}" in weights]
        if arrays:
            item.set_weights(arrays)
    return model


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Pictures of several shapes (the centre crop matters), in class folders named as the labels."""
    folder = tmp_path_factory.mktemp("tm-pictures")
    rng = np.random.default_rng(1)
    paths = []
    for index, size in enumerate([(60, 40), (40, 70), (48, 48), (90, 30), (33, 50), (64, 64)]):
        path = folder / LABELS[index % len(LABELS)] / f"picture_{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def expected_probabilities(weights, pictures: list[Path]) -> np.ndarray:
    """Teachable Machine's preprocessing written out here: the centre square resized, then x / 127.5 - 1."""
    from simpsons_core.data.images import load_pixels

    pixels = np.stack([load_pixels(path, 32, "centre-crop") for path in pictures]).astype(np.float32)
    return np.asarray(reference_network(weights).predict_on_batch(pixels / 127.5 - 1))


def probabilities(run_id: str, pictures: list[Path]) -> np.ndarray:
    predictor = Predictor.from_run(run_id)
    return np.array(
        [[p.probabilities[name] for name in predictor.labels] for p in predictor.predict(pictures)]
    )


# --- The run's input record --------------------------------------------------------------------------


def test_model_input_round_trips_describes_itself_and_refuses_nonsense() -> None:
    from simpsons_core.config import TrainConfig

    assert ModelInput.from_dict(TM_INPUT_32.to_dict()) == TM_INPUT_32
    assert TM_INPUT_32.describe() == "32x32 RGB, centre square, pixel values x / 127.5 - 1"
    trained = ModelInput.for_training(TrainConfig(image_size=64))
    assert (
        trained == ModelInput(64)
        and trained.describe() == "64x64 RGB, whole picture squashed, pixel values x / 255"
    )
    with pytest.raises(ValueError, match="colour must be one of rgb, greyscale, not 'sepia'"):
        ModelInput(32, colour="sepia")
    with pytest.raises(ValueError, match="Unknown ModelInput field"):
        ModelInput.from_dict({"size": 32, "mean": 0.5})


def test_a_trained_run_without_a_model_input_record_gets_its_training_one(
    workspace: Path, tmp_path, weights
) -> None:
    """Runs made before model_input existed read theirs from their TrainConfig; a damaged record says so."""
    from simpsons_core.config import TrainConfig
    from simpsons_core.run.folder import RunFolder

    folder = RunFolder(workspace / "runs" / "20260101-000000-old")
    folder.path.mkdir(parents=True)
    folder.write_config(TrainConfig(image_size=48))
    assert read_run(folder.path).model_input == ModelInput(48)
    folder.write_config(TrainConfig(image_size=48), model_input={"size": 48, "fit": "stretch"})
    damaged = read_run(folder.path)
    with pytest.raises(
        ValueError, match=re.escape("config.json is damaged: model_input: fit must be one of")
    ):
        assert damaged.model_input


# --- The real exports against TensorFlow.js ------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tm-fixture-pictures")
    with zipfile.ZipFile(FIXTURES / "image-model-data.zip") as archive:
        archive.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def fixture_runs(module_workspace: Path) -> dict[str, str]:
    """Both fixture exports imported once: zip name -> run id."""
    return {
        zip_name: import_teachable_machine(FIXTURES / zip_name)
        for zip_name in ("image-model.zip", "tiny-image-model.zip")
    }


@needs_fixtures
@pytest.mark.parametrize(
    ("zip_name", "model_input"),
    [
        ("image-model.zip", ModelInput(224, "rgb", "centre-crop", 1 / 127.5, -1.0)),
        ("tiny-image-model.zip", ModelInput(96, "greyscale", "centre-crop", 1 / 127.5, -1.0)),
    ],
)
def test_fixture_exports_give_the_probabilities_tensorflow_js_gives(
    fixture_runs: dict[str, str], fixture_pictures: Path, zip_name: str, model_input: ModelInput
) -> None:
    reference = json.loads(REFERENCE.read_text())["models"][zip_name]
    info = resolve_run(fixture_runs[zip_name])
    assert info.labels == reference["labels"] == ["Class 1", "Class 2"]
    assert info.model_input == model_input
    names = sorted(reference["probabilities"])
    assert len(names) == 22
    got = probabilities(info.id, [fixture_pictures / name for name in names])
    np.testing.assert_allclose(got, [reference["probabilities"][name] for name in names], atol=1e-4)


@needs_fixtures
def test_an_imported_run_says_what_it_is(fixture_runs: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    info = read_run(fixture_runs["image-model.zip"])
    assert (info.state, info.imported, info.model_name) == (
        "completed",
        True,
        "teachable-machine mobilenetv2_0.35_224",
    )
    assert info.config["teachable_machine"] == {
        "format": "tfjs",
        "network": "mobilenetv2_0.35_224",
        "tmVersion": "1.1.0",
        "tfjsVersion": "1.1.2",
    }
    assert main(["runs", "list"]) == 0
    assert "teachable-machine mobilenetv2_0.35_224" in capsys.readouterr().out


@needs_fixtures
def test_the_fixture_model_is_right_on_its_own_test_pictures(
    fixture_runs: dict[str, str], fixture_pictures: Path
) -> None:
    from simpsons_core.inference.evaluate import evaluate

    evaluation = evaluate(fixture_runs["image-model.zip"], data_dir=fixture_pictures)
    assert (evaluation.images, evaluation.labels) == (22, ["Class 1", "Class 2"])
    reference = json.loads(REFERENCE.read_text())["models"]["image-model.zip"]["probabilities"]
    right = [np.argmax(row) == (name.startswith("Class 2")) for name, row in reference.items()]
    assert evaluation.accuracy == pytest.approx(np.mean(right))


# --- Exports made here: TF.js folder and zip, Keras 2 .h5 ---------------------------------------------------


def test_a_tfjs_folder_gives_what_keras_3_gives(workspace: Path, tmp_path: Path, weights, pictures) -> None:
    run_id = import_teachable_machine(write_tfjs_export(tmp_path / "export", weights), name="made here")
    info = resolve_run(run_id)
    assert (info.labels, info.model_input) == (LABELS, TM_INPUT_32)
    assert run_id.endswith("-made-here")
    np.testing.assert_allclose(
        probabilities(run_id, pictures), expected_probabilities(weights, pictures), atol=1e-5
    )


def test_a_zip_with_a_top_folder_and_macos_junk_is_read_like_the_folder(tmp_path: Path, weights) -> None:
    folder = write_tfjs_export(tmp_path / "export", weights)
    archive = tmp_path / "tm-model.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in folder.iterdir():
            out.write(file, f"my model/{file.name}")
            out.writestr(f"__MACOSX/my model/._{file.name}", b"\x00\x05\x16\x07 resource fork")
        out.writestr("my model/.DS_Store", b"\x00\x00\x00\x01Bud1")
    from_zip, from_folder = read_export(archive), read_export(folder)
    assert from_zip.labels == from_folder.labels == LABELS
    for a, b in zip(from_zip.model.get_weights(), from_folder.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_keras_h5_in_the_old_layout_loads_despite_groups(
    workspace: Path, tmp_path: Path, weights, pictures
) -> None:
    import keras

    h5 = write_keras2_h5(tmp_path / "converted_keras" / "keras_model.h5", weights)
    with h5py.File(h5, "r") as handle:
        assert '"groups": 1' in handle.attrs["model_config"]
    with pytest.raises((TypeError, ValueError), match="groups"):  # what Teachable Machine's users hit
        keras.saving.load_model(h5, compile=False)
    assert main(["import-tm", str(h5), "--name", "keras export"]) == 0
    run_id = read_run(sorted((workspace / "runs").iterdir())[-1]).id
    info = resolve_run(run_id)
    assert (info.labels, info.model_input, info.config["teachable_machine"]["format"]) == (
        LABELS,
        TM_INPUT_32,
        "keras",
    )
    np.testing.assert_allclose(
        probabilities(run_id, pictures), expected_probabilities(weights, pictures), atol=1e-5
    )


# --- Refused, saying why ------------------------------------------------------------------------------------


def test_a_quantised_export_is_refused(tmp_path: Path, weights) -> None:
    quantised = {"quantization": {"dtype": "uint8", "scale": 0.01, "min": -1.0}}
    folder = write_tfjs_export(tmp_path / "export", weights, **quantised)
    with pytest.raises(ValueError, match=r"The weights are quantised .*only float32 exports can be imported"):
        read_export(folder)
    float16 = write_tfjs_export(tmp_path / "float16", weights, dtype="float16")
    with pytest.raises(ValueError, match="The weights are float16; only float32"):
        read_export(float16)


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        ("weights.bin", FileNotFoundError, "The weight shard weights.bin that model.json names is missing"),
        (
            "metadata.json",
            FileNotFoundError,
            "metadata.json is missing from the export: it holds the class names",
        ),
        ("model.json", ValueError, "holds no model.json and no .h5 file"),
        ("truncated", ValueError, "fewer than the manifest describes .* a shard is truncated"),
        ("two labels", ValueError, "The model has 3 outputs but the export names 2 classes"),
    ],
)
def test_a_broken_export_is_refused_naming_the_problem(
    tmp_path: Path, weights, damage: str, error: type[Exception], message: str
) -> None:
    folder = write_tfjs_export(
        tmp_path / "export", weights, labels=LABELS[:2] if damage == "two labels" else LABELS
    )
    if damage == "truncated":
        (folder / "weights.bin").write_bytes((folder / "weights.bin").read_bytes()[:-8])
    elif damage != "two labels":
        (folder / damage).unlink()
    with pytest.raises(error, match=message):
        read_export(folder)


def test_a_keras_export_without_its_labels_is_refused(tmp_path: Path, weights, capsys) -> None:
    h5 = write_keras2_h5(tmp_path / "keras_model.h5", weights)
    (tmp_path / "labels.txt").unlink()
    assert main(["import-tm", str(h5)]) == 2
    assert "labels.txt is missing beside keras_model.h5" in capsys.readouterr().err
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\n")
    assert read_export(h5, labels=tmp_path / "names.txt").labels == ["cat", "dog", "bird"]


# --- An imported run through predict, evaluate, explain and export ------------------------------------------


@pytest.fixture(scope="module")
def imported_run(module_workspace: Path, tmp_path_factory: pytest.TempPathFactory, weights) -> str:
    return import_teachable_machine(write_tfjs_export(tmp_path_factory.mktemp("tm") / "export", weights))


def test_predict_and_evaluate_on_a_folder_use_teachable_machines_input(
    imported_run: str, pictures: list[Path], weights, capsys: pytest.CaptureFixture
) -> None:
    from simpsons_core.inference.evaluate import evaluate

    expected = expected_probabilities(weights, pictures)
    assert main(["predict", imported_run, str(pictures[0])]) == 0
    best = LABELS[int(expected[0].argmax())]
    assert f"{pictures[0]}: {best} {expected[0].max():.1%}" in capsys.readouterr().out
    evaluation = evaluate(imported_run, data_dir=pictures[0].parent.parent)
    true = [LABELS.index(path.parent.name) for path in pictures]
    assert evaluation.images == len(pictures)
    assert evaluation.accuracy == pytest.approx(np.mean(expected.argmax(axis=1) == true))


def test_explain_draws_grad_cam_over_the_centre_square(imported_run: str, pictures: list[Path]) -> None:
    from simpsons_core.inference.explain import explain

    wide = pictures[3]  # 90x30: the model sees its centre 30x30
    explanation = explain(Predictor.from_run(imported_run), wide, LABELS[1])
    assert explanation.heatmap.shape == (32, 32) and explanation.heatmap.max() <= 1.0
    assert explanation.overlay.width == explanation.overlay.height


QUANTISED_FORMATS = ("tflite-int8", "tflite-full-int8")


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_an_imported_run_exports_like_a_trained_one(
    imported_run: str, pictures: list[Path], fmt: str
) -> None:
    """Every format converts, loads back and is checked on the pictures; the float ones give the Keras
    model's probabilities (the quantised ones' accuracy is the export's own tests' business)."""
    result = export_run(imported_run, fmt, check_images=pictures, calibration_images=pictures)
    assert result.checked_images == len(pictures) and result.path.exists()
    if fmt not in QUANTISED_FORMATS:
        assert result.top1_agreement == 1.0 and result.max_probability_difference < 1e-4
