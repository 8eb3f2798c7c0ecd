"""Figures that say how far a model's answers can be trusted, and temperature scaling to make them truer.

Accuracy alone hides two things users get hurt by: a rare class the model never finds (balanced accuracy and
per-class recall show it) and probabilities that claim more than they deliver (expected calibration error,
confident errors). Temperature scaling fixes the second with one number fitted on validation data, and
`fold_temperature` writes it into the model so every consumer of the saved file gets calibrated answers.
`choose_threshold` then picks the confidence above which answers meet an accuracy target.

Only numpy at module level: the CLI imports this without TensorFlow. "labels" here are true class indices,
"probabilities" are [N, classes] softmax outputs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

DEFAULT_BINS = 10
CONFIDENT_AT = 0.9
TARGET_ACCURACY = 0.97
# The "sure" threshold never goes below even odds: in-domain validation images can be so easy that every
# answer there qualifies, but an answer the model itself gives less than 50% is not one to call sure on the
# pictures users bring, which are unlike them.
SURE_FLOOR = 0.5
# Below about 30 answers a single mistake moves accuracy by more than 3 points, so a cut chosen on fewer
# answers is the luck of the draw rather than a property of the model.
MIN_ANSWERED = 30
# log(0) is -inf: probabilities are clipped here before taking logs.
PROBABILITY_FLOOR = 1e-12
# Temperatures searched: symmetric in log space around 1, wide enough for any model worth calibrating.
TEMPERATURE_RANGE = (0.05, 20.0)
# Golden-section search stops when the bracket on log T is this narrow (T to about 1e-7 relative).
LOG_TEMPERATURE_TOLERANCE = 1e-7
_INVERSE_GOLDEN = (math.sqrt(5) - 1) / 2
# Slack when comparing right answers with target x answered, so float rounding of the product (0.55 * 100
# is 55.00000000000001) cannot reject a target met exactly.
_COUNT_SLACK = 1e-9


@dataclass(frozen=True)
class ReliabilityBin:
    """One bar of a reliability diagram: answers whose top confidence lies in (lower, upper].

    A calibrated model's accuracy equals its mean confidence in every bin. `confidence` and `accuracy` are
    None for an empty bin.
    """

    lower: float
    upper: float
    count: int
    confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class ConfidentErrors:
    """Answers given with top confidence >= `at`, and how many of them were wrong: the mistakes a user is
    least likely to double-check."""

    wrong: int
    answered: int
    at: float

    @property
    def rate(self) -> float:
        """Share of confident answers that were wrong; 0.0 when there were none."""
        return self.wrong / self.answered if self.answered else 0.0

    @property
    def sentence(self) -> str:
        return (
            f"confident errors: {self.wrong} of {self.answered} answers at >= {_percent(self.at)} were wrong"
        )


@dataclass(frozen=True)
class CoveragePoint:
    """Answering only when top confidence >= `threshold`: the share of images answered and how many of
    those answers are right."""

    threshold: float
    coverage: float
    accuracy: float


@dataclass(frozen=True)
class Threshold:
    """The confidence at or above which to answer, chosen on labelled (validation) data.

    Attributes:
        confidence: answer when the top probability is >= this; 1.0 when the target was not reached.
        coverage: share of the images that are answered at this cut (0.0 when not reached).
        accuracy: share of those answers that were right; None when nothing is answered.
        target: the accuracy asked for.
        reached: False when no cut with at least `min_answered` answers meets the target: then answer nothing
            rather than claim an accuracy the data does not show.
        min_answered: fewest answers a cut needed to count.
    """

    confidence: float
    coverage: float
    accuracy: float | None
    target: float
    reached: bool
    min_answered: int

    def answers(self, confidence: float) -> bool:
        """Whether an answer with this top confidence should be given."""
        return self.reached and confidence >= self.confidence

    @property
    def sentence(self) -> str:
        if not self.reached:
            return (
                f"no confidence cut reaches {_percent(self.target)} accuracy with at least "
                f"{self.min_answered} answers"
            )
        return (
            f"answer at confidence >= {self.confidence:.3f}: {_percent(self.coverage)} of images answered, "
            f"{_percent(self.accuracy or 0.0)} of them right (target {_percent(self.target)})"
        )


@dataclass(frozen=True)
class TrustSummary:
    """How far one evaluation's answers can be trusted, in a form that survives a round trip through JSON.

    Attributes:
        accuracy: share of answers that were right.
        balanced_accuracy: mean recall over the classes present: a rare class counts as much as a common one.
        per_class_recall: recall of each class in output order; None for a class with no examples.
        ece: expected calibration error over `reliability`'s bins.
        confident_errors: wrong answers among the confident ones.
        reliability: the bins of a reliability diagram.
    """

    accuracy: float
    balanced_accuracy: float
    per_class_recall: list[float | None]
    ece: float
    confident_errors: ConfidentErrors
    reliability: list[ReliabilityBin]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustSummary:
        data = dict(data)
        data["confident_errors"] = ConfidentErrors(**data["confident_errors"])
        data["reliability"] = [ReliabilityBin(**b) for b in data["reliability"]]
        return cls(**data)


def trust_summary(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS, at: float = CONFIDENT_AT
) -> TrustSummary:
    """Every trust figure of one set of predictions against their true labels."""
    probabilities, labels = _checked(probabilities, labels)
    predicted = probabilities.argmax(axis=1)
    num_classes = probabilities.shape[1]
    return TrustSummary(
        accuracy=float(np.mean(predicted == labels)),
        balanced_accuracy=balanced_accuracy(labels, predicted, num_classes),
        per_class_recall=per_class_recall(labels, predicted, num_classes),
        ece=expected_calibration_error(probabilities, labels, bins),
        confident_errors=confident_errors(probabilities, labels, at),
        reliability=reliability_bins(probabilities, labels, bins),
    )


def per_class_recall(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[float | None]:
    """Of each class's images, the share predicted as that class; None for a class with no images, whose
    recall is unknown rather than zero."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    support = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels[labels == predicted], minlength=num_classes)
    return [float(h / s) if s else None for h, s in zip(hits, support, strict=True)]


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Mean per-class recall over the classes with at least one image: a model that ignores a rare class
    cannot hide behind the common ones."""
    recalls = [r for r in per_class_recall(labels, predicted, num_classes) if r is not None]
    if not recalls:
        raise ValueError("balanced accuracy needs at least one labelled example.")
    return float(np.mean(recalls))


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> list[ReliabilityBin]:
    """Equal-width bins over the top-class confidence, each (lower, upper]: a reliability diagram's bars."""
    probabilities, labels = _checked(probabilities, labels)
    confidence, correct = _top(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    result = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        result.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                confidence=float(confidence[members].mean()) if count else None,
                accuracy=float(correct[members].mean()) if count else None,
            )
        )
    return result


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> float:
    """The count-weighted mean gap between confidence and accuracy over the reliability bins: how far, on
    average, the stated confidence is from how often the model is right."""
    table = reliability_bins(probabilities, labels, bins)
    total = sum(b.count for b in table)
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in table if b.count))


def confident_errors(
    probabilities: np.ndarray, labels: np.ndarray, at: float = CONFIDENT_AT
) -> ConfidentErrors:
    """Answers with top confidence >= `at`, and how many of them were wrong."""
    probabilities, labels = _checked(probabilities, labels)
    confidence, correct = _top(probabilities, labels)
    confident = confidence >= at
    return ConfidentErrors(wrong=int((confident & ~correct).sum()), answered=int(confident.sum()), at=at)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean -ln p(true class) after scaling by `temperature`: the loss temperature scaling minimises."""
    probabilities, labels = _checked(probabilities, labels)
    return _nll(_logits(probabilities), labels, temperature)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(log(p) / T) on labelled data.

    T > 1 softens an over-confident model, T < 1 sharpens an under-confident one; the predicted class never
    changes. Works from probabilities because saved models end in a softmax (log p equals the logits up to a
    per-row constant, which softmax ignores). The NLL is convex in 1/T, hence unimodal in log T, so a
    golden-section search over log T within TEMPERATURE_RANGE finds the minimum deterministically. T = 1 is
    returned when fitting would not lower the NLL (e.g. all rows uniform), so calibrating never hurts.
    """
    probabilities, labels = _checked(probabilities, labels)
    logits = _logits(probabilities)

    def loss(log_t: float) -> float:
        return _nll(logits, labels, math.exp(log_t))

    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    c, d = high - _INVERSE_GOLDEN * (high - low), low + _INVERSE_GOLDEN * (high - low)
    loss_c, loss_d = loss(c), loss(d)
    while high - low > LOG_TEMPERATURE_TOLERANCE:
        if loss_c < loss_d:
            high, d, loss_d = d, c, loss_c
            c = high - _INVERSE_GOLDEN * (high - low)
            loss_c = loss(c)
        else:
            low, c, loss_c = c, d, loss_d
            d = low + _INVERSE_GOLDEN * (high - low)
            loss_d = loss(d)
    best = (low + high) / 2
    return math.exp(best) if loss(best) < loss(0.0) else 1.0


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) as float64: what the model would have answered with its logits divided by T."""
    _check_temperature(temperature)
    return _softmax(_logits(np.asarray(probabilities, dtype=np.float64)) / temperature)


def coverage_curve(probabilities: np.ndarray, labels: np.ndarray) -> list[CoveragePoint]:
    """Coverage and accuracy when answering only at top confidence >= each distinct confidence seen,
    thresholds ascending (so coverage descending): the trade-off a confidence cut makes."""
    thresholds, answered, right = _cuts(probabilities, labels)
    total = int(answered.max())
    return [
        CoveragePoint(threshold=float(t), coverage=float(a / total), accuracy=float(r / a))
        for t, a, r in zip(thresholds, answered, right, strict=True)
    ]


def choose_threshold(
    probabilities: np.ndarray,
    labels: np.ndarray,
    target_accuracy: float = TARGET_ACCURACY,
    min_answered: int = MIN_ANSWERED,
) -> Threshold:
    """The lowest confidence cut c (over the distinct confidences seen) such that the answers with top
    confidence >= c are at least `target_accuracy` right, and there are at least `min_answered` of them.

    The lowest such cut answers the most images while meeting the target. The minimum count is there for
    small validation sets: otherwise the one or two most confident answers, right by luck, would set a cut
    that promises an accuracy the data cannot show. No cut is below `SURE_FLOOR`. When no cut qualifies the
    result answers nothing (confidence 1.0, coverage 0, `reached` False).
    """
    if not 0.0 < target_accuracy <= 1.0:
        raise ValueError(f"target_accuracy must be in (0, 1], not {target_accuracy}.")
    thresholds, answered, right = _cuts(probabilities, labels)
    qualifies = (right >= target_accuracy * answered - _COUNT_SLACK) & (answered >= min_answered)
    qualifies &= thresholds >= SURE_FLOOR
    if not qualifies.any():
        return Threshold(1.0, 0.0, None, target_accuracy, reached=False, min_answered=min_answered)
    i = int(np.argmax(qualifies))  # thresholds ascend: the first qualifying one is the lowest
    return Threshold(
        confidence=float(thresholds[i]),
        coverage=float(answered[i] / answered.max()),
        accuracy=float(right[i] / answered[i]),
        target=target_accuracy,
        reached=True,
        min_answered=min_answered,
    )


def fold_temperature(model: keras.Model, temperature: float) -> None:
    """Divide the last layer's kernel and bias by `temperature`, in place.

    softmax((W x + b) / T) equals softmax((W / T) x + b / T), so afterwards the model itself gives calibrated
    probabilities, and so does every file saved or exported from it. The last layer must be a Dense layer with
    a softmax activation (what this project's models end in); the weights keep their dtype, so a float32
    kernel under mixed precision stays float32.
    """
    import keras

    _check_temperature(temperature)
    layer = model.layers[-1] if model.layers else None
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if not isinstance(layer, keras.layers.Dense) or layer.activation is not keras.activations.softmax:
        found = "no layers" if layer is None else f"{type(layer).__name__} {layer.name!r}"
        if activation:
            found += f" with activation {activation!r}"
        raise ValueError(
            f"fold_temperature needs a model whose last layer is a Dense layer with a softmax activation; "
            f"this model's last layer is {found}."
        )
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        raise ValueError(
            f"fold_temperature needs a plain Dense last layer; {layer.name!r} is LoRA-enabled or quantized."
        )
    for weight in (layer.kernel, layer.bias):
        if weight is not None:
            values = keras.ops.convert_to_numpy(weight)
            weight.assign((values / temperature).astype(values.dtype))


def _checked(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(f"probabilities must be a non-empty [N, classes] array, not {probabilities.shape}.")
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels for {len(probabilities)} rows of probabilities.")
    if labels.min() < 0 or labels.max() >= probabilities.shape[1]:
        raise ValueError(f"labels must be class indices in [0, {probabilities.shape[1]}).")
    return probabilities, labels


def _top(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top-class confidence, whether the top class is the true one) per row."""
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == labels


def _cuts(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each distinct top confidence ascending, answers with confidence >= it, right ones among them)."""
    probabilities, labels = _checked(probabilities, labels)
    confidence, correct = _top(probabilities, labels)
    order = np.argsort(-confidence, kind="stable")
    descending, right = confidence[order], np.cumsum(correct[order])
    # The last position of each run of equal confidences: a cut cannot split answers it cannot tell apart.
    ends = np.flatnonzero(np.append(descending[1:] != descending[:-1], True))
    return descending[ends][::-1], (ends + 1)[::-1], right[ends][::-1]


def _logits(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probabilities, PROBABILITY_FLOOR, 1.0))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = logits / temperature
    top = scaled.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
    return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def _check_temperature(temperature: float) -> None:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, not {temperature}.")


def _percent(share: float) -> str:
    """0.9 -> "90%", 0.975 -> "97.5%": no rounding that would misstate a target."""
    return f"{share * 100:.4g}%"
