"""Exporting a run's model for serving elsewhere, each export checked by loading it back.

Formats, all written to the run folder's `exports/`:
- `keras`: a `.keras` file (Keras 3) without the optimizer state the run's own file keeps for training.
- `savedmodel`: a TensorFlow SavedModel through Keras 3's `model.export` (TF Serving; endpoint `serve`).
- `tflite`: LiteRT/TFLite float32; `tflite-int8`: the same with dynamic-range quantisation (int8 weights,
  float activations; about 4x smaller, no calibration data needed).
- `tflite-full-int8`: integer-only operations, uint8 pixel values in and uint8 probabilities out, for
  microcontrollers and Coral boards, calibrated on the run's training images (`tflite.py` says how).
- `onnx`: through Keras' own ONNX export (tf2onnx), checked with onnxruntime.

Every export but the full-integer one takes what the Keras model takes: float32 [N, S, S, C], the picture
prepared as the run's `ModelInput` says. `exports/manifest.json` records that input, the labels, and for each
export what it takes and gives and how it checked. The check runs real images from the run's dataset through
the Keras model and the reloaded export: top-1 agreement, largest probability difference, and the latency of
one single-image call.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from simpsons_core import atomic
from simpsons_core.data.images import ImageError, ImageSource
from simpsons_core.inference.predict import Predictor
from simpsons_core.inference.tflite import CALIBRATION_IMAGES, Quantisation
from simpsons_core.run.lookup import resolve_run

if TYPE_CHECKING:
    from simpsons_core.run.folder import RunInfo

T = TypeVar("T")
FULL_INT8 = "tflite-full-int8"
EXPORT_FORMATS = ("keras", "savedmodel", "tflite", "tflite-int8", FULL_INT8, "onnx")
# Images each export is compared on by default: a dataset's whole test split of 200, as the README measured.
CHECK_IMAGES = 200
# Timed single-image calls (after one warm-up) whose median is an export's latency.
LATENCY_CALLS = 20
PROBABILITIES = "softmax probabilities in the order of labels"
_FILE_NAMES = {
    "keras": "model.keras",
    "savedmodel": "savedmodel",
    "tflite": "model.tflite",
    "tflite-int8": "model-int8.tflite",
    FULL_INT8: "model-full-int8.tflite",
    "onnx": "model.onnx",
}
# What images are for, in an error's words, and the CLI option that supplies them.
_CHECK = ("check the export with", "--check-data")
_CALIBRATE = ("calibrate the full-integer export with", "--calibration-data")


@dataclass(frozen=True)
class ExportResult:
    """One export and how faithfully it reproduces the Keras model.

    Attributes:
        format: one of `EXPORT_FORMATS`.
        path: the exported file or folder.
        size_bytes: its size on disk (a folder's files added up).
        checked_images: how many real images were compared.
        top1_agreement: share of those images where the export and the Keras model pick the same class.
        max_probability_difference: the largest absolute difference of any class probability.
        latency_ms: the median time of a single-image call of the reloaded export, in milliseconds.
        input, output: what the export takes and gives, in words.
        input_quantisation, output_quantisation: a quantised input's and output's dtype, shape, scale and
            zero point (the full-integer export's), else None.
        calibration_images: how many images calibrated the activation ranges (0: none needed).
    """

    format: str
    path: Path
    size_bytes: int
    checked_images: int
    top1_agreement: float
    max_probability_difference: float
    latency_ms: float
    input: str
    output: str
    input_quantisation: Quantisation | None = None
    output_quantisation: Quantisation | None = None
    calibration_images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}

    def describe(self) -> str:
        line = (
            f"{self.format:<16} {self.size_bytes / 1e6:8.2f} MB  top-1 agreement "
            f"{self.top1_agreement:.1%} on {self.checked_images} images, "
            f"max probability difference {self.max_probability_difference:.2g}, "
            f"{self.latency_ms:.2f} ms per image  {self.path}"
        )
        if self.input_quantisation is None:
            return line
        return (
            f"{line}\n    calibrated on {self.calibration_images} images\n"
            f"    takes {self.input}\n    gives {self.output}"
        )


def export_run(
    run: str | Path,
    fmt: str,
    check_images: Sequence[ImageSource] | None = None,
    limit: int = CHECK_IMAGES,
    calibration_images: Sequence[ImageSource] | None = None,
) -> ExportResult:
    """Export `run`'s model as `fmt` into its `exports/` folder, then load the export back and compare it with
    the Keras model on `check_images` (default: up to `limit` images of the run's dataset, test split first).
    The full-integer export is calibrated on `calibration_images` (default: up to `CALIBRATION_IMAGES` of the
    run's training images).

    Raises:
        ValueError: unknown format, no images to check or calibrate with, or a conversion that failed.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}.")
    info = resolve_run(run)
    predictor = Predictor.from_run(info.path)
    if check_images is None:
        check_images = dataset_sample(info, limit)
    pixels = _pixels(predictor, check_images, _CHECK)
    calibration = None
    if fmt == FULL_INT8:
        if calibration_images is None:
            calibration_images = dataset_sample(info, CALIBRATION_IMAGES, training=True)
        calibration = _pixels(predictor, calibration_images, _CALIBRATE)
    exports = info.folder.exports_dir
    target = exports / _FILE_NAMES[fmt]
    _write_export(predictor, fmt, target, calibration)
    result = _compare(predictor, pixels, fmt, target, calibration)
    _record(exports, predictor, result)
    return result


def _write_export(predictor: Predictor, fmt: str, target: Path, calibration: np.ndarray | None) -> None:
    """Write to a temporary name beside `target`, then rename: a reader never sees half an export, and a
    failed conversion leaves the previous export in place."""
    import tensorflow as tf

    from simpsons_core.inference.tflite import write_full_int8

    target.parent.mkdir(parents=True, exist_ok=True)
    temp = atomic.temp_path_for(target)
    try:
        if fmt == "keras":
            predictor.model.save(temp)  # loaded without its optimizer: a third of the run's file
        elif fmt == "savedmodel":  # one plain tensor in, though Lite0's model has a list of inputs
            size, channels = predictor.input.size, predictor.input.channels
            signature = [tf.TensorSpec([None, size, size, channels], tf.float32)]
            predictor.model.export(temp, format="tf_saved_model", verbose=False, input_signature=signature)
        elif fmt in ("tflite", "tflite-int8"):
            options = {"optimizations": [tf.lite.Optimize.DEFAULT]} if fmt == "tflite-int8" else {}
            predictor.model.export(temp, format="litert", verbose=False, **options)
        elif fmt == FULL_INT8:
            assert calibration is not None
            write_full_int8(predictor.model, predictor.input, calibration, temp)
        else:
            with warnings.catch_warnings():  # Keras' tf2onnx patch probes np.object
                warnings.filterwarnings("ignore", message=".*np.object", category=FutureWarning)
                predictor.model.export(temp, format="onnx", verbose=False)
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(temp, target)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp)
        else:
            temp.unlink(missing_ok=True)


def export_inputs(fmt: str, predictor: Predictor, pixels: np.ndarray) -> np.ndarray:
    """What an export of `fmt` takes for uint8 RGB pixels [N, S, S, 3] (from `Predictor.load`): the model's
    float input, or for the full-integer export the pixel values themselves."""
    from simpsons_core.inference.tflite import pixel_values

    return pixel_values(pixels, predictor.input) if fmt == FULL_INT8 else predictor.model_inputs(pixels)


def load_export(fmt: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function running an exported model: its input (`export_inputs`) -> float32 probabilities [N, C]."""
    if fmt == "keras":
        import keras

        model = keras.saving.load_model(path, compile=False)
        return lambda x: np.asarray(model.predict_on_batch(x))
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # keep it: its variables die with it
        return lambda x: loaded.serve(tf.constant(x)).numpy()
    if fmt in ("tflite", "tflite-int8", FULL_INT8):
        from simpsons_core.inference.tflite import tflite_runner

        return tflite_runner(path)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _compare(
    predictor: Predictor, pixels: np.ndarray, fmt: str, target: Path, calibration: np.ndarray | None
) -> ExportResult:
    from simpsons_core.inference.tflite import quantisation

    expected = predictor.probabilities(pixels)
    inputs = export_inputs(fmt, predictor, pixels)
    run = load_export(fmt, target)
    actual = np.asarray(run(inputs), dtype=np.float32)
    if fmt == FULL_INT8:
        quantised_input, quantised_output = quantisation(target)
        takes = (
            f"{quantised_input.describe()}: the pixel values (0-255) of a picture prepared as "
            f"{predictor.input.describe()} (the model applies that scaling itself)"
        )
        gives = f"{quantised_output.describe()}: {PROBABILITIES}"
    else:
        quantised_input = quantised_output = None
        takes, gives = float_input(predictor), f"float32 [N, {len(predictor.labels)}]: {PROBABILITIES}"
    return ExportResult(
        format=fmt,
        path=target,
        size_bytes=_size(target),
        checked_images=len(pixels),
        top1_agreement=float(np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))),
        max_probability_difference=float(np.abs(actual - expected).max()),
        latency_ms=_latency_ms(run, inputs[:1]),
        input=takes,
        output=gives,
        input_quantisation=quantised_input,
        output_quantisation=quantised_output,
        calibration_images=0 if calibration is None else len(calibration),
    )


def float_input(predictor: Predictor) -> str:
    """What the float exports take, in words."""
    size, channels = predictor.input.size, predictor.input.channels
    return f"float32 [N, {size}, {size}, {channels}]: {predictor.input.describe()}"


def _latency_ms(run: Callable[[np.ndarray], np.ndarray], one: np.ndarray) -> float:
    """The median of `LATENCY_CALLS` timed calls on one image, after a warm-up call."""
    run(one)
    times = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def _pixels(predictor: Predictor, sources: Sequence[ImageSource], purpose: tuple[str, str]) -> np.ndarray:
    """Decoded pixels of the readable `sources` (ValueError when none is)."""
    pixels = []
    for source in sources:
        with contextlib.suppress(ImageError):
            pixels.append(predictor.load(source))
    if not pixels:
        words, option = purpose
        raise ValueError(f"No readable images to {words}; pass some ({option} DIR).")
    return np.stack(pixels)


def dataset_sample(info: RunInfo, limit: int, training: bool = False) -> list[Path]:
    """Up to `limit` image paths spread evenly over the run's dataset: its training images, else its test
    split when it has one."""
    from simpsons_core.run.lookup import run_dataset

    try:
        layout = run_dataset(info)
    except FileNotFoundError as error:
        words, option = _CALIBRATE if training else _CHECK
        raise ValueError(f"{error} To {words.removesuffix(' with')}, pass images ({option} DIR).") from error
    items = layout.train if training else (layout.test or layout.train)
    return spread([item.path for item in items], limit)


def spread(items: Sequence[T], limit: int) -> list[T]:
    """Up to `limit` of `items`, evenly spaced: every class of a sorted listing, not the first few."""
    step = max(1, len(items) // max(1, limit))
    return list(items[::step][:limit])


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _record(exports: Path, predictor: Predictor, result: ExportResult) -> None:
    """Keep `exports/manifest.json` describing the run's input, what the float exports take, and each
    export's own input, output and check."""
    import json

    manifest_path = exports / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        manifest = {}
    manifest.update(
        labels=predictor.labels,
        model_input=predictor.input.to_dict(),
        input=f"{float_input(predictor)} (every export but {FULL_INT8}, whose entry says what it takes)",
        output=f"float32 [N, classes]: {PROBABILITIES}",
    )
    manifest.setdefault("exports", {})[result.format] = result.to_dict()
    atomic.write_json(manifest_path, manifest)
