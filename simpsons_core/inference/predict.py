"""Classifying pictures with a trained run: files, folders, uploads (bytes or file objects) and PIL images.

A `Predictor` loads a run's model and labels once and keeps one compiled call warm: `model.predict` builds a
data pipeline on every call, which costs many times the model's own work for one image; a traced
`tf.function` with a fixed input signature does not (the figures: benchmarks/reports/amd-epyc-avx2/latest.md,
section 4).
Pixels come from `images.load_pixels` and are scaled by `pipeline.prepare_for_model`, both as the run's
`ModelInput` says (a trained run's: as in training; an imported model's: as its maker prepared pictures), and
evaluation, Grad-CAM and exports go through the same two, so the same file gets the same probabilities
everywhere.

Whether an answer is "sure" comes from the run's own threshold (`RunInfo.threshold`), chosen after training on
its leak-free validation images as the confidence from which answers met `calibration.TARGET_ACCURACY`. It
replaces the former fixed LOW_CONFIDENCE (50%), which promised nothing measured; a run without a threshold
gives no verdict.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simpsons_core.config import AugmentConfig, ModelInput
from simpsons_core.data.images import ImageError, ImageSource, is_image_name, load_pixels
from simpsons_core.run.lookup import resolve_run

if TYPE_CHECKING:
    import keras

    from simpsons_core.run.folder import RunInfo

# What a picture gets instead of "nan%" from a model whose weights became NaN (or whose output overflowed).
NO_PROBABILITIES = "the model gave no usable probabilities (NaN): retrain it"


def load_model(info: RunInfo) -> keras.Model:
    """The run's model (`info.model_path`, which `resolve_run` checked exists), loaded as every consumer loads
    it. A file that passed the cheap check of `RunFolder.choose_model` yet does not load raises ValueError
    naming it, instead of Keras' misleading "File not found"."""
    import keras

    path = info.model_path
    if path is None:
        raise FileNotFoundError(f"Run {info.id} has no intact saved model.")
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"Run {info.id} cannot be used: {path.name} is damaged ({error}).") from error


def model_key(info: RunInfo) -> tuple[str, float]:
    """(model path, modification time): a cache key for a loaded `Predictor` that changes when the run saves a
    new model (the dashboard caches on it)."""
    path = info.model_path
    return str(path), path.stat().st_mtime if path else 0.0


@dataclass(frozen=True)
class Prediction:
    """What the model says about one picture, or why it could not say anything.

    Attributes:
        source: the file name (or "the image" for anonymous bytes), for display and CSV rows.
        probabilities: class name -> probability, in the model's output order; empty when `error` is set.
        top: the `k` most likely (class name, probability) pairs, most likely first.
        error: a message naming the problem when the picture could not be read, or the model gave no finite
            probabilities for it (`NO_PROBABILITIES`); None on success.
        sure: whether the top confidence reaches the run's threshold; None when the run has none (or `error`).
    """

    source: str
    probabilities: dict[str, float]
    top: list[tuple[str, float]]
    error: str | None = None
    sure: bool | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        return self.top[0][0] if self.top else None

    @property
    def confidence(self) -> float:
        return self.top[0][1] if self.top else 0.0

    @property
    def answer(self) -> str:
        """The answer in words: the label, "not sure (maybe homer_simpson, 41%)" below the run's threshold, or
        "error: ..." for a picture that could not be read."""
        if not self.ok:
            return f"error: {self.error}"
        if self.sure is False:
            return f"not sure (maybe {self.label}, {self.confidence:.0%})"
        return self.label or ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "label": self.label,
            "confidence": self.confidence,
            "sure": self.sure,
            "top": [list(pair) for pair in self.top],
            "probabilities": self.probabilities,
            "error": self.error,
        }


class Predictor:
    """A trained model with its labels and preprocessing, ready for fast repeated calls.

    Args:
        model: a Keras classifier taking `model_input`'s float inputs, ending in a softmax.
        labels: class names in the model's output order.
        model_input: how pictures become the model's input (`input`); an AugmentConfig stands for a trained
            run's: pictures squashed to the model's size, times its `rescale`.
        batch_size: how many decoded images go through the model at once when predicting many files.
        threshold: answers whose top confidence is below this are "not sure" (`Prediction.sure`); None gives
            no verdict.

    Example:

    ```python
    predictor = Predictor.from_run("latest")
    [result] = predictor.predict(["homer.jpg"])
    print(result.label, result.confidence)
    ```
    """

    def __init__(
        self,
        model: keras.Model,
        labels: Sequence[str],
        model_input: ModelInput | AugmentConfig,
        batch_size: int = 64,
        threshold: float | None = None,
    ) -> None:
        import tensorflow as tf

        from simpsons_core.data.pipeline import prepare_for_model

        shape = tuple(model.input_shape)
        if isinstance(model_input, AugmentConfig):
            model_input = ModelInput(size=int(shape[1] or 0), scale=model_input.rescale)
        expected = (None, model_input.size, model_input.size, model_input.channels)
        if shape != expected:
            raise ValueError(
                f"The model takes inputs of shape {shape}, not {expected} ({model_input.describe()})."
            )
        classes = model.output_shape[-1]
        if classes != len(labels):
            raise ValueError(f"The model has {classes} outputs but {len(labels)} labels were given.")
        self.model = model
        self.labels = list(labels)
        self.input = model_input
        self.image_size = model_input.size
        self.batch_size = batch_size
        self.threshold = threshold
        signature = [tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.uint8)]

        @tf.function(input_signature=signature, autograph=False)
        def probabilities(pixels: tf.Tensor) -> tf.Tensor:
            return model(prepare_for_model(pixels, model_input), training=False)

        # The concrete function, called directly, skips tf.function's per-call dispatch, a measurable share of
        # a single-image prediction (benchmarks/reports/amd-epyc-avx2/latest.md, section 4).
        self._probabilities = probabilities.get_concrete_function()
        self.probabilities(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))  # trace once, now

    @classmethod
    def from_run(cls, run: str | Path) -> Predictor:
        """Load a run's best model (best.keras, else model.keras; an intact one, see `RunInfo.model_note`),
        labels and "sure" threshold. `run` is an id, a folder or "latest". To cache it (the dashboard does),
        key on `model_key(info)` so a new model is picked up (calibration rewrites the model and records its
        threshold before the run completes). Raises as `resolve_run` does for a damaged run."""
        info = resolve_run(run)
        return cls(load_model(info), info.labels, info.model_input, threshold=info.threshold)

    @property
    def augment(self) -> AugmentConfig:
        """The input's scaling as an AugmentConfig, for code that predates `input`; ValueError for an input
        that is more than a rescale of squashed RGB pixels (read `input` instead)."""
        if self.input != ModelInput(self.input.size, scale=self.input.scale):
            raise ValueError(
                f"This model's input ({self.input.describe()}) is more than a rescale: use .input."
            )
        return AugmentConfig(rescale=self.input.scale)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB pixels [N, S, S, 3] (from `load`) -> float32 probabilities [N, classes], `batch_size`
        images at a time (a memory-mapped array is read batch by batch)."""
        rows = [
            self._probabilities(np.asarray(pixels[start : start + self.batch_size], dtype=np.uint8)).numpy()
            for start in range(0, len(pixels), self.batch_size)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, len(self.labels)), np.float32)

    def model_inputs(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB pixels [N, S, S, 3] (from `load`) -> what the model takes: float32 [N, S, S, C]."""
        from simpsons_core.data.pipeline import prepare_for_model

        return np.asarray(prepare_for_model(pixels, self.input), dtype=np.float32)

    def predict(
        self,
        sources: Iterable[ImageSource],
        top_k: int = 3,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """One `Prediction` per source, in order. A picture that cannot be read gets a `Prediction` with its
        `error` set instead of raising, so one bad upload never spoils a batch. `progress(done, total)` is
        called after each batch."""
        sources = list(sources)
        results: list[Prediction] = []
        for start in range(0, len(sources), self.batch_size):
            results.extend(self._predict_batch(sources[start : start + self.batch_size], top_k))
            if progress:
                progress(len(results), len(sources))
        return results

    def predict_one(self, source: ImageSource, top_k: int = 3) -> Prediction:
        return self._predict_batch([source], top_k)[0]

    def load(self, source: ImageSource) -> np.ndarray:
        """The uint8 RGB pixels [S, S, 3] that the model's input is made of, for `source` (ImageError)."""
        return load_pixels(source, self.input.size, self.input.fit)

    def _predict_batch(self, sources: Sequence[ImageSource], top_k: int) -> list[Prediction]:
        pixels: list[np.ndarray] = []
        errors: list[str | None] = []
        for source in sources:
            try:
                pixels.append(self.load(source))
                errors.append(None)
            except ImageError as error:
                errors.append(str(error))
        rows = iter(self.probabilities(np.stack(pixels)) if pixels else [])
        return [
            self._prediction(source_name(source), next(rows), top_k)
            if error is None
            else Prediction(source_name(source), {}, [], error)
            for source, error in zip(sources, errors, strict=True)
        ]

    def _prediction(self, name: str, row: np.ndarray, top_k: int) -> Prediction:
        if not np.isfinite(row).all():
            return Prediction(name, {}, [], NO_PROBABILITIES)
        order = np.argsort(-row, kind="stable")[: max(1, top_k)]
        return Prediction(
            source=name,
            probabilities={label: float(p) for label, p in zip(self.labels, row, strict=True)},
            top=[(self.labels[i], float(row[i])) for i in order],
            sure=None if self.threshold is None else bool(row[order[0]] >= self.threshold),
        )


def source_name(source: ImageSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", None) or "the image")


def image_files(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[Path]:
    """Files named directly, plus every image file inside named folders (recursively, sorted). A named file is
    kept whatever its suffix, so a misnamed or broken file gets its own error row rather than vanishing. The
    other files of the folders (`.svg`, `.heic`, `.txt`...) are appended to `skipped`, so a caller can say
    which were left out; hidden files (`.DS_Store`) are left out silently."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append(path)
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        found.extend(p for p in files if is_image_name(p))
        if skipped is not None:
            skipped.extend(p for p in files if not is_image_name(p))
    return found


def check_csv_path(out: Path) -> None:
    """Refuse a CSV destination that is a folder (ValueError), before minutes of predicting, not after."""
    if Path(out).is_dir():
        raise ValueError(
            f"{out} is a folder; give a file name for the CSV, e.g. {Path(out) / 'predictions.csv'}."
        )


def write_csv(predictions: Sequence[Prediction], labels: Sequence[str], out: Path) -> None:
    """The `csv_text` of the predictions, written to `out` (ValueError when `out` is a folder)."""
    from simpsons_core.atomic import write_text

    check_csv_path(out)
    write_text(Path(out), csv_text(predictions, labels))


def csv_text(predictions: Sequence[Prediction], labels: Sequence[str]) -> str:
    """One row per picture: source, label, confidence, sure ("true", "false", or empty when the run has no
    threshold), error, then one probability column per class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["source", "label", "confidence", "sure", "error", *labels])
    for p in predictions:
        probabilities = [f"{p.probabilities[name]:.6f}" if p.ok else "" for name in labels]
        confidence = f"{p.confidence:.6f}" if p.ok else ""
        sure = "" if p.sure is None else str(p.sure).lower()
        writer.writerow([p.source, p.label or "", confidence, sure, p.error or "", *probabilities])
    return buffer.getvalue()
