"""Every export format, loaded back and compared with the Keras model on real images; the full-integer TFLite
export's uint8 input and output, integer-only tensors, recorded quantisation and scaling inside the graph."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from simpsons_core.cli.main import main
from simpsons_core.inference.export import EXPORT_FORMATS, FULL_INT8, ExportResult, export_run
from simpsons_core.inference.tflite import float_tensors, interpreter
from simpsons_core.run.folder import MODEL_INPUT_KEY

pytest_plugins = ["run_fixtures"]

TRAINING_IMAGES = 96  # the tiny dataset's training split: all of them calibrate the full-integer export


@pytest.fixture(scope="module")
def run_copy(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained run, since exports are written into the run folder."""
    return Path(shutil.copytree(trained_run, tmp_path_factory.mktemp("export") / "run"))


@pytest.fixture(scope="module")
def full_int8(run_copy: Path) -> ExportResult:
    return export_run(run_copy, FULL_INT8)


@pytest.mark.parametrize(
    ("fmt", "max_difference"),
    [
        ("keras", 0.0),
        ("savedmodel", 1e-5),
        ("tflite", 1e-5),
        ("tflite-int8", 0.05),
        ("onnx", 1e-5),
    ],
)
def test_export_round_trip(run_copy: Path, fmt: str, max_difference: float) -> None:
    result = export_run(run_copy, fmt)
    assert result.path.exists() and result.path.parent == run_copy / "exports"
    assert result.size_bytes > 10_000
    assert result.checked_images == 24  # the tiny dataset's whole test split
    assert result.max_probability_difference <= max_difference
    assert result.top1_agreement >= (0.9 if fmt == "tflite-int8" else 1.0)
    assert 0 < result.latency_ms < 1000
    manifest = json.loads((run_copy / "exports" / "manifest.json").read_text())
    assert manifest["exports"][fmt]["size_bytes"] == result.size_bytes
    assert manifest["exports"][fmt]["input"].startswith("float32 [N, 32, 32, 3]: 32x32 RGB")
    assert "float32 [N, 32, 32, 3]" in manifest["input"]
    assert manifest["model_input"] == {
        "size": 32,
        "colour": "rgb",
        "fit": "squash",
        "scale": 1 / 255,
        "offset": 0,
    }
    assert not [p for p in (run_copy / "exports").iterdir() if ".tmp" in p.name]


def test_full_int8_agrees_with_the_keras_model_on_real_images(full_int8: ExportResult) -> None:
    assert full_int8.checked_images == 24
    assert full_int8.top1_agreement >= 0.9  # measured 1.0 here; quantised probabilities step by 1/256
    assert full_int8.max_probability_difference <= 0.1
    assert full_int8.calibration_images == TRAINING_IMAGES


def test_full_int8_takes_raw_uint8_pixels_and_gives_uint8_with_integer_tensors_only(
    full_int8: ExportResult,
) -> None:
    loaded = interpreter(full_int8.path)
    [source], [result] = loaded.get_input_details(), loaded.get_output_details()
    assert (source["dtype"], list(source["shape_signature"])) == (np.uint8, [1, 32, 32, 3])
    assert source["quantization"] == (1.0, 0)  # pixel values 0-255 go in as they are
    assert (result["dtype"], list(result["shape"])) == (np.uint8, [1, 4])
    assert result["quantization"] == (1 / 256, 0)
    assert float_tensors(full_int8.path) == []
    assert {np.dtype(t["dtype"]).name for t in loaded.get_tensor_details()} <= {"int8", "uint8", "int32"}


def test_full_int8_records_how_to_feed_it(run_copy: Path, full_int8: ExportResult) -> None:
    entry = json.loads((run_copy / "exports" / "manifest.json").read_text())["exports"][FULL_INT8]
    assert entry["input_quantisation"] == {
        "dtype": "uint8",
        "shape": [1, 32, 32, 3],
        "scale": 1.0,
        "zero_point": 0,
    }
    assert entry["output_quantisation"] == {
        "dtype": "uint8",
        "shape": [1, 4],
        "scale": 1 / 256,
        "zero_point": 0,
    }
    assert entry["calibration_images"] == TRAINING_IMAGES
    assert entry["input"].startswith("uint8 [1, 32, 32, 3], real = 1 x (q - 0): the pixel values (0-255)")
    assert "pixel values x / 255 (the model applies that scaling itself)" in entry["input"]
    assert entry["output"] == (
        "uint8 [1, 4], real = 0.00390625 x (q - 0): softmax probabilities in the order of labels"
    )
    assert "takes uint8 [1, 32, 32, 3]" in full_int8.describe()


def test_quantised_tflite_is_much_smaller(run_copy: Path, full_int8: ExportResult) -> None:
    sizes = {fmt: export_run(run_copy, fmt, limit=4).size_bytes for fmt in ("tflite", "tflite-int8")}
    assert sizes["tflite-int8"] < sizes["tflite"] / 3
    assert full_int8.size_bytes < sizes["tflite"] / 3


def test_full_int8_puts_a_greyscale_centre_crop_input_with_an_offset_inside_the_graph(
    trained_run: Path, tmp_path: Path, tiny_dataset: Path
) -> None:
    """A Teachable-Machine-like input (one grey channel, centre crop, x / 127.5 - 1): the export takes grey
    pixel values 0-255 and applies the scaling itself, agreeing with the Keras model on the same pictures."""
    run = Path(shutil.copytree(trained_run, tmp_path / "grey", ignore=shutil.ignore_patterns("exports")))
    rgb = keras.saving.load_model(run / "model.keras", compile=False)
    grey = keras.Input((32, 32, 1))
    model = keras.Model(grey, rgb(keras.layers.Concatenate()([grey, grey, grey])))
    for name in ("best.keras", "model.keras"):
        model.save(run / name)
    config = json.loads((run / "config.json").read_text())
    config[MODEL_INPUT_KEY] = {
        "size": 32,
        "colour": "greyscale",
        "fit": "centre-crop",
        "scale": 1 / 127.5,
        "offset": -1.0,
    }
    (run / "config.json").write_text(json.dumps(config))

    result = export_run(run, FULL_INT8)
    assert result.input_quantisation is not None
    assert (result.input_quantisation.shape, result.input_quantisation.scale) == ((1, 32, 32, 1), 1.0)
    assert result.top1_agreement >= 0.9 and result.max_probability_difference <= 0.1
    assert "32x32 greyscale, centre square, pixel values x / 127.5 - 1" in result.input


def test_bad_requests_are_refused(run_copy: Path, tmp_path: Path) -> None:
    assert "onnx" in EXPORT_FORMATS and FULL_INT8 in EXPORT_FORMATS
    with pytest.raises(ValueError, match="Unknown export format 'pt'"):
        export_run(run_copy, "pt")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="No readable images to check the export with"):
        export_run(run_copy, "keras", check_images=[tmp_path / "notes.txt"])
    with pytest.raises(ValueError, match=r"No readable images to calibrate .* \(--calibration-data DIR\)"):
        export_run(run_copy, FULL_INT8, calibration_images=[tmp_path / "notes.txt"])


def test_cli_exports_several_formats_and_prints_sizes(run_copy: Path, tiny_dataset: Path, capsys) -> None:
    data = tiny_dataset / "simpson_testset" / "bart_simpson"
    code = main(
        ["export", str(run_copy), "--format", "keras", "--format", "tflite", "--check-data", str(data)]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["keras", "tflite"]
    assert all(" MB " in line and "top-1 agreement 100.0% on 6 images" in line for line in lines)
    assert all(" ms per image " in line for line in lines)


def test_cli_full_int8_says_how_to_feed_it_and_calibrates_on_the_given_folder(
    run_copy: Path, tiny_dataset: Path, capsys
) -> None:
    calibration = tiny_dataset / "simpsons_trainset" / "homer_simpson"
    code = main(["export", str(run_copy), "--format", FULL_INT8, "--calibration-data", str(calibration)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[0] == FULL_INT8
    assert lines[1:] == [
        "    calibrated on 24 images",
        "    takes uint8 [1, 32, 32, 3], real = 1 x (q - 0): the pixel values (0-255) of a picture "
        "prepared as 32x32 RGB, whole picture squashed, pixel values x / 255 (the model applies that "
        "scaling itself)",
        "    gives uint8 [1, 4], real = 0.00390625 x (q - 0): softmax probabilities in the order of labels",
    ]
