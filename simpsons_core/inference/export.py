"""Exporting a run's model for serving elsewhere, each export checked by loading it back.

Formats, all written to the run folder's `exports/`:
- `keras`: a `.keras` file (Keras 3) without the optimizer state the run's own file keeps for training.
- `savedmodel`: a TensorFlow SavedModel through Keras 3's `model.export` (TF Serving; endpoint `serve`).
- `tflite`: LiteRT/TFLite float32; `tflite-int8`: the same with dynamic-range quantisation (int8 weights,
  float activations; about 4x smaller, no calibration data needed).
- `onnx`: through Keras' own ONNX export (tf2onnx), checked with onnxruntime.

Every exported model takes what the Keras model takes: float32 [N, S, S, 3], RGB pixels multiplied by the
run's `rescale` (`exports/manifest.json` records S, the rescale and the labels). The check runs real images
from the run's dataset through the Keras model and the reloaded export and reports top-1 agreement and the
largest probability difference.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simpsons_core import atomic
from simpsons_core.data.images import ImageError, ImageSource
from simpsons_core.inference.predict import Predictor
from simpsons_core.run.lookup import resolve_run
from simpsons_core.tf_notices import without_known_notices

if TYPE_CHECKING:
    from simpsons_core.run.folder import RunInfo

EXPORT_FORMATS = ("keras", "savedmodel", "tflite", "tflite-int8", "onnx")
# Images each export is compared on by default: a dataset's whole test split of 200, as the README measured.
CHECK_IMAGES = 200
_FILE_NAMES = {
    "keras": "model.keras",
    "savedmodel": "savedmodel",
    "tflite": "model.tflite",
    "tflite-int8": "model-int8.tflite",
    "onnx": "model.onnx",
}


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
    """

    format: str
    path: Path
    size_bytes: int
    checked_images: int
    top1_agreement: float
    max_probability_difference: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}

    def describe(self) -> str:
        return (
            f"{self.format:<12} {self.size_bytes / 1e6:8.2f} MB  top-1 agreement "
            f"{self.top1_agreement:.1%} on {self.checked_images} images, "
            f"max probability difference {self.max_probability_difference:.2g}  {self.path}"
        )


def export_run(
    run: str | Path, fmt: str, check_images: Sequence[ImageSource] | None = None, limit: int = CHECK_IMAGES
) -> ExportResult:
    """Export `run`'s model as `fmt` into its `exports/` folder, then load the export back and compare it with
    the Keras model on `check_images` (default: up to `limit` images of the run's dataset, test split first).

    Raises:
        ValueError: unknown format, or no images to check with.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}.")
    info = resolve_run(run)
    predictor = Predictor.from_run(info.path)
    pixels = _check_pixels(predictor, info, check_images, limit)
    exports = info.folder.exports_dir
    target = exports / _FILE_NAMES[fmt]
    _write_export(predictor, fmt, target)
    result = _compare(predictor, pixels, fmt, target)
    _record(exports, predictor, result)
    return result


def _write_export(predictor: Predictor, fmt: str, target: Path) -> None:
    """Write to a temporary name beside `target`, then rename: a reader never sees half an export."""
    import tensorflow as tf

    target.parent.mkdir(parents=True, exist_ok=True)
    temp = atomic.temp_path_for(target)
    try:
        if fmt == "keras":
            predictor.model.save(temp)  # loaded without its optimizer: a third of the run's file
        elif fmt == "savedmodel":
            predictor.model.export(temp, format="tf_saved_model", verbose=False)
        elif fmt in ("tflite", "tflite-int8"):
            options = {"optimizations": [tf.lite.Optimize.DEFAULT]} if fmt == "tflite-int8" else {}
            predictor.model.export(temp, format="litert", verbose=False, **options)
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


def load_export(fmt: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function running an exported model: float32 model input [N, S, S, 3] -> probabilities [N, C]."""
    if fmt == "keras":
        import keras

        model = keras.saving.load_model(path, compile=False)
        return lambda x: np.asarray(model.predict_on_batch(x))
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # keep it: its variables die with it
        return lambda x: loaded.serve(tf.constant(x)).numpy()
    if fmt in ("tflite", "tflite-int8"):
        return _tflite_runner(path)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _tflite_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """LiteRT's own interpreter (`ai_edge_litert`) when installed, else TensorFlow's deprecated copy."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings(), without_known_notices():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interpreter = Interpreter(model_path=str(path))
    [input_detail] = interpreter.get_input_details()

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(input_detail["index"], list(x.shape))
        with without_known_notices():  # the XNNPACK delegate announces itself when tensors are allocated
            interpreter.allocate_tensors()
        interpreter.set_tensor(input_detail["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()

    return run


def _compare(predictor: Predictor, pixels: np.ndarray, fmt: str, target: Path) -> ExportResult:
    from simpsons_core.data.pipeline import prepare_for_model

    expected = predictor.probabilities(pixels)
    inputs = np.asarray(prepare_for_model(pixels, predictor.augment), dtype=np.float32)
    actual = np.asarray(load_export(fmt, target)(inputs), dtype=np.float32)
    return ExportResult(
        format=fmt,
        path=target,
        size_bytes=_size(target),
        checked_images=len(pixels),
        top1_agreement=float(np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))),
        max_probability_difference=float(np.abs(actual - expected).max()),
    )


def _check_pixels(
    predictor: Predictor, info: RunInfo, check_images: Sequence[ImageSource] | None, limit: int
) -> np.ndarray:
    """Decoded pixels of the comparison images: the given ones, else an even spread over the run's dataset."""
    if check_images is None:
        check_images = dataset_sample(info, limit)
    pixels = []
    for source in check_images:
        with contextlib.suppress(ImageError):
            pixels.append(predictor.load(source))
    if not pixels:
        raise ValueError("No readable images to check the export with; pass some (--check-data DIR).")
    return np.stack(pixels)


def dataset_sample(info: RunInfo, limit: int) -> list[Path]:
    """Up to `limit` image paths spread evenly over the run's dataset (its test split when it has one)."""
    from simpsons_core.run.lookup import run_dataset

    try:
        layout = run_dataset(info)
    except FileNotFoundError as error:
        raise ValueError(
            f"{error} To check the export, pass images to compare on (--check-data DIR)."
        ) from error
    items = layout.test or layout.train
    step = max(1, len(items) // limit)
    return [item.path for item in items[::step][:limit]]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _record(exports: Path, predictor: Predictor, result: ExportResult) -> None:
    """Keep `exports/manifest.json` describing the input every export expects, and each export's check."""
    import json

    manifest_path = exports / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        manifest = {}
    size = predictor.image_size
    manifest.update(
        labels=predictor.labels,
        input=(
            f"float32 [N, {size}, {size}, 3]: RGB pixels (0-255) times "
            f"{predictor.augment.rescale:.10g}, images squashed to {size}x{size}"
        ),
        output="float32 [N, classes]: softmax probabilities in the order of labels",
    )
    manifest.setdefault("exports", {})[result.format] = result.to_dict()
    atomic.write_json(manifest_path, manifest)
