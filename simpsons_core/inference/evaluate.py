"""Measuring a run's model on labelled images: accuracy, confusion matrix, per-class figures, worst mistakes,
and how far its answers can be trusted (balanced accuracy, calibration, confident errors, coverage).

Images go through the training pipeline's own decoding and then the run's `Predictor`, both as the run's
`ModelInput` says, so the figures are about exactly what the model saw in training (for an imported model:
what its maker fed it) and what prediction shows. The result is saved as `evaluation-<split>.json` in the
run folder, where the dashboard reads it; a file saved before the trust figures existed still loads, without
them.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simpsons_core.data.images import is_image_name
from simpsons_core.inference.calibration import CoveragePoint, TrustSummary, coverage_curve, trust_summary
from simpsons_core.run.folder import CONFIG_FILE, MODEL_INPUT_KEY
from simpsons_core.run.lookup import resolve_run, run_dataset

if TYPE_CHECKING:
    from simpsons_core.data.folders import DatasetLayout, LabelledImage
    from simpsons_core.run.folder import RunInfo

# The run's own images an evaluation can use; any other folder is saved as "folder:<its name>".
SPLITS = ("validation", "test")
# The coverage curve has a point per distinct confidence; this many are kept: enough to draw it, few enough to
# keep the JSON small.
COVERAGE_POINTS = 50


@dataclass(frozen=True)
class ClassReport:
    """Precision: of the images predicted as this class, the share that are. Recall: of the images of this
    class, the share found. F1: their harmonic mean. Support: images of this class evaluated."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Mistake:
    path: str
    true_label: str
    predicted: str
    loss: float  # cross-entropy of the true class, -ln p(true): high means confidently wrong
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        """The probability of the wrong answer: how sure the model was of it."""
        return self.probabilities[self.predicted]

    @property
    def true_probability(self) -> float:
        return self.probabilities[self.true_label]

    @property
    def caption(self) -> str:
        """Both probabilities, so the order of `most_confident_first` can be read off the captions:
        "bart_simpson 3% → homer_simpson 92%"."""
        return f"{self.true_label} {self.true_probability:.0%} → {self.predicted} {self.confidence:.0%}"


def most_confident_first(mistakes: Sequence[Mistake]) -> list[Mistake]:
    """Mistakes by the probability of the wrong answer, highest first (ties: lowest true-class probability
    first). Saved evaluations keep the loss order; a gallery captioned with the answer's probability needs
    this one, or its order looks random (a 60% answer can cost more loss than a 90% one)."""
    return sorted(mistakes, key=lambda m: (-m.confidence, m.true_probability))


@dataclass
class Evaluation:
    """One evaluation of a run's model.

    Attributes:
        run_id: the run evaluated.
        split: "test", "validation", or "folder:<name>" for a folder given by the user.
        source: the folder the images came from and how they were chosen, in words.
        labels: the model's classes, in output order (rows and columns of `confusion`).
        accuracy: share of scored images whose predicted class is the true one.
        confusion: counts, rows the true class, columns the predicted class.
        classes: per-class precision, recall, F1 and support, in `labels` order.
        mistakes: every misclassified image, the most confidently wrong (highest loss) first.
        images: images scored.
        unknown_classes: class name -> images in the folder of classes the model does not know (not scored).
        skipped: (path, reason) for files that could not be decoded.
        leak_note: for the dataset's test split, how much of it has near-duplicates in training, e.g.
            "may overlap training: 12 of 200 near-duplicates"; None for other images.
        created: when it was computed (ISO 8601, local time).
        trust: balanced accuracy, per-class recall, calibration error, confident errors and reliability bins;
            None in a file saved before they existed.
        coverage: accuracy of the answers against the share answered as the confidence cut rises, at most
            COVERAGE_POINTS points; None in a file saved before it existed.
    """

    run_id: str
    split: str
    source: str
    labels: list[str]
    accuracy: float
    confusion: list[list[int]]
    classes: list[ClassReport]
    mistakes: list[Mistake]
    images: int
    unknown_classes: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    leak_note: str | None = None
    created: str = ""
    trust: TrustSummary | None = None
    coverage: list[CoveragePoint] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        data = dict(data)
        data["classes"] = [ClassReport(**c) for c in data["classes"]]
        data["mistakes"] = [Mistake(**m) for m in data["mistakes"]]
        data["skipped"] = [tuple(s) for s in data.get("skipped", [])]
        if data.get("trust") is not None:
            data["trust"] = TrustSummary.from_dict(data["trust"])
        if data.get("coverage") is not None:
            data["coverage"] = [CoveragePoint(**point) for point in data["coverage"]]
        return cls(**data)

    def table(self, mistakes: int = 10) -> str:
        """Plain text for a terminal: summary and trust figures, per-class table, confusion matrix, worst
        mistakes."""
        lines = [f"Run {self.run_id}, {self.split}: {self.source}"]
        lines.append(f"{self.images} images, accuracy {self.accuracy:.3f}")
        if self.leak_note:
            lines[-1] += f" ({self.leak_note})"
        lines += self._trust_lines()
        width = max(12, *(len(name) for name in self.labels)) + 2
        lines += ["", f"{'class':<{width}}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
        lines += [
            f"{c.name:<{width}}{c.precision:>10.3f}{c.recall:>8.3f}{c.f1:>8.3f}{c.support:>9}"
            for c in self.classes
        ]
        short = [name[:8] for name in self.labels]
        lines += ["", "Confusion matrix (rows: true class, columns: predicted class)"]
        lines.append(" " * width + "".join(f"{name:>9}" for name in short))
        lines += [
            f"{name:<{width}}" + "".join(f"{count:>9}" for count in row)
            for name, row in zip(self.labels, self.confusion, strict=True)
        ]
        if self.mistakes:
            lines += [
                "",
                f"Most confidently wrong ({min(mistakes, len(self.mistakes))} of {len(self.mistakes)}):",
            ]
            lines += [
                f"  {m.true_label} -> {m.predicted} (p={m.probabilities[m.predicted]:.2f}, loss {m.loss:.2f})"
                f"  {m.path}"
                for m in self.mistakes[:mistakes]
            ]
        if self.unknown_classes:
            listed = ", ".join(f"{name} ({count})" for name, count in sorted(self.unknown_classes.items()))
            lines += ["", f"Not scored, classes this model does not know: {listed}"]
        if self.skipped:
            lines += ["", f"Skipped {len(self.skipped)} unreadable file(s):"]
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)

    def _trust_lines(self) -> list[str]:
        """Balanced accuracy, calibration error and confident errors, one line each; "-" for a figure the file
        was saved without."""
        trust = self.trust
        if trust is None:
            return ["balanced accuracy -", "expected calibration error -", "confident errors: -"]
        return [
            f"balanced accuracy {trust.balanced_accuracy:.3f} (mean per-class recall)",
            f"expected calibration error {trust.ece:.3f} (ECE, {len(trust.reliability)} bins: "
            "mean gap between confidence and accuracy)",
            trust.confident_errors.sentence,
        ]


def coverage_points(
    probabilities: np.ndarray, labels: np.ndarray, most: int = COVERAGE_POINTS
) -> list[CoveragePoint]:
    """`coverage_curve` thinned to at most `most` points, evenly spaced along it with both ends kept, so a
    large evaluation saves a curve as small as a small one's."""
    curve = coverage_curve(probabilities, labels)
    if len(curve) <= most:
        return curve
    return [curve[i] for i in np.linspace(0, len(curve) - 1, most).round().astype(int)]


def score(
    labels: Sequence[str], true: np.ndarray, probabilities: np.ndarray
) -> tuple[float, np.ndarray, list]:
    """(accuracy, confusion matrix, per-class reports) from true class indices and predicted probabilities."""
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    hits = np.diag(confusion).astype(float)
    support, predicted_count = confusion.sum(axis=1), confusion.sum(axis=0)
    precision = np.divide(hits, predicted_count, out=np.zeros_like(hits), where=predicted_count > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    classes = [
        ClassReport(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]
    accuracy = float(hits.sum() / max(1, len(true)))
    return accuracy, confusion, classes


def evaluate(
    run: str | Path,
    split: str = "test",
    data_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Evaluate `run`'s model and save the result as `evaluation-<split>.json` in the run folder.

    Args:
        run: a run id, a run folder, or "latest".
        split: "test" (the dataset's own test split) or "validation" (the run's leak-free validation split,
            re-created from its config). Ignored when `data_dir` is given.
        data_dir: evaluate every labelled image in this folder instead: class subfolders, or files lying flat
            and labelled by name (`bart_simpson_12.jpg`), or a whole dataset (its test split).
        progress: `progress(done, total)` while decoding images.
    """
    info = resolve_run(run)
    config = info.usable_config()
    labels = info.labels
    items, unlabelled, source, leak_note, split = _items(info, labels, split, data_dir)
    known = [item for item in items if item.label in labels]
    unknown = dict(Counter([item.label for item in items if item.label not in labels] + unlabelled))
    if not known:
        count = len(items) + len(unlabelled)
        raise ValueError(f"None of the {count} images in {source} is of a class this model knows.")

    from simpsons_core.data.decoding import decode_images
    from simpsons_core.inference.predict import NO_PROBABILITIES, Predictor, load_model

    model, model_input = load_model(info), info.model_input
    if model.input_shape[1] != model_input.size:  # else a raw Keras shape error after decoding every image
        setting = f"{MODEL_INPUT_KEY} size" if MODEL_INPUT_KEY in info.config else "image_size"
        raise ValueError(
            f"Run {info.id} cannot be used: {CONFIG_FILE} is damaged: it says {setting} "
            f"{model_input.size}, but the model takes {model.input_shape[1]} px images."
        )
    predictor = Predictor(model, labels, model_input, batch_size=config.batch_size)
    decoded = decode_images(known, labels, model_input.size, progress=progress, fit=model_input.fit)
    probabilities = predictor.probabilities(decoded.pixels).astype(np.float64)
    if not np.isfinite(probabilities).all():
        raise ValueError(f"Run {info.id} cannot be evaluated: {NO_PROBABILITIES}.")
    true = np.asarray(decoded.labels, dtype=np.int64)
    accuracy, confusion, classes = score(labels, true, probabilities)
    evaluation = Evaluation(
        run_id=info.id,
        split=split,
        source=source,
        labels=labels,
        accuracy=accuracy,
        confusion=confusion.tolist(),
        classes=classes,
        mistakes=_mistakes(labels, decoded.paths, true, probabilities),
        images=len(true),
        unknown_classes=unknown,
        skipped=[(str(path), reason) for path, reason in decoded.skipped],
        leak_note=leak_note,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        trust=trust_summary(probabilities, true),
        coverage=coverage_points(probabilities, true),
    )
    info.folder.write_evaluation(split, evaluation.to_dict())
    return evaluation


def read_evaluation(run: str | Path, split: str = "test") -> Evaluation | None:
    """The saved evaluation of `run` on `split`, or None when there is none (or it is unreadable).

    A run that cannot be resolved at all (missing, or without a model yet) raises as `resolve_run` does.
    """
    data = resolve_run(run).folder.read_evaluation(split)
    try:
        return Evaluation.from_dict(data) if data is not None else None
    except (ValueError, TypeError, KeyError):
        return None


def folder_split(folder: Path) -> str:
    """The split name an evaluation of another folder is saved under."""
    return f"folder:{Path(folder).expanduser().name}"


def _items(
    info: RunInfo, labels: list[str], split: str, data_dir: str | Path | None
) -> tuple[list[LabelledImage], list[str], str, str | None, str]:
    """(labelled images, guessed classes of images no known class name matches, where the images came from in
    words, leak note, split name)."""
    from simpsons_core.data.folders import detect_layout

    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        name = folder_split(folder)
        if folder.is_dir() and any(is_image_name(p) for p in folder.iterdir()):
            items, unlabelled = _flat_items(folder, labels)
            return items, unlabelled, f"{folder} (files labelled by name)", None, name
        layout = detect_layout(folder)
        if layout.test:
            return layout.test, _unlabelled(layout), f"{layout.root} (its test split)", None, name
        return layout.train, [], f"{layout.root} ({layout.description})", None, name
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}.")
    from simpsons_core.data.splits import overlap_with_training, split_for_training

    layout = run_dataset(info)
    if split == "validation":
        config = info.usable_config()
        _, validation = split_for_training(layout, config)
        how = (
            "the dataset's test split"
            if config.validation == "test"
            else "the run's leak-free validation split"
        )
        return validation, [], f"{layout.root} ({how})", None, split
    if not layout.test:
        raise ValueError(f"{layout.root} has no test split; evaluate on the validation split instead.")
    return (
        layout.test,
        _unlabelled(layout),
        f"{layout.root} (its test split)",
        overlap_with_training(layout).phrase,
        split,
    )


def _flat_items(folder: Path, labels: list[str]) -> tuple[list[LabelledImage], list[str]]:
    """Images lying flat in `folder`, labelled by the model's class their name starts with
    (`bart_simpson_12.jpg`); for the others, a guess at their class from the name, to report."""
    from simpsons_core.data.folders import LabelledImage, label_from_name

    items, unlabelled = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p)):
        label = label_from_name(path.name, labels)
        if label is None:
            unlabelled.append(_guess_class(path))
        else:
            items.append(LabelledImage(path, label))
    return items, unlabelled


def _unlabelled(layout: DatasetLayout) -> list[str]:
    """Guessed classes of the test files whose names match no class of the dataset."""
    return [
        _guess_class(p.path)
        for p in layout.problems
        if p.kind == "unlabelled" and p.path is not None and p.path.parent == layout.test_dir
    ]


def _guess_class(path: Path) -> str:
    """`maggie_simpson_3.jpg` -> "maggie_simpson": the name without its trailing number."""
    return re.sub(r"[\s_-]*\d+$", "", path.stem) or path.stem


def _mistakes(
    labels: Sequence[str], paths: Sequence[Path], true: np.ndarray, probabilities: np.ndarray
) -> list[Mistake]:
    losses = -np.log(np.clip(probabilities[np.arange(len(true)), true], 1e-12, 1.0))
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != true)
    return [
        Mistake(
            path=str(paths[i]),
            true_label=labels[true[i]],
            predicted=labels[int(probabilities[i].argmax())],
            loss=float(losses[i]),
            probabilities={name: float(p) for name, p in zip(labels, probabilities[i], strict=True)},
        )
        for i in sorted(wrong, key=lambda i: -losses[i])
    ]
