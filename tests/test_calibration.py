"""Trust figures and temperature scaling against hand-worked examples and models of known calibration.

A perfectly calibrated model is built by construction: draw logits, take p = softmax(logits), then draw each
true label from p itself. Raising p to a power (renormalised) is softmax of scaled logits, so p**3 is a model
over-confident by a temperature of exactly 3, and p**0.5 one under-confident by 0.5.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from simpsons_core.inference.calibration import (
    SURE_FLOOR,
    ConfidentErrors,
    TrustSummary,
    apply_temperature,
    balanced_accuracy,
    choose_threshold,
    confident_errors,
    coverage_curve,
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
    negative_log_likelihood,
    per_class_recall,
    reliability_bins,
    trust_summary,
)

# Four answers, two classes, worked by hand with 10 bins:
#   conf 0.95 right -> bin (0.9, 1.0]: accuracy 1, confidence 0.95, gap 0.05
#   conf 0.85 wrong, conf 0.85 right -> bin (0.8, 0.9]: accuracy 0.5, confidence 0.85, gap 0.35
#   conf 0.65 wrong -> bin (0.6, 0.7]: accuracy 0, confidence 0.65, gap 0.65
# ECE = 1/4 * 0.05 + 2/4 * 0.35 + 1/4 * 0.65 = 0.35
TINY_PROBABILITIES = [[0.95, 0.05], [0.85, 0.15], [0.15, 0.85], [0.35, 0.65]]
TINY_LABELS = [0, 1, 1, 0]
TINY_ECE = 0.35


def calibrated_sample(n: int = 4000, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    draws = rng.random(n)[:, None]
    labels = np.minimum((draws > probabilities.cumsum(axis=1)).sum(axis=1), classes - 1)
    return probabilities, labels


def sharpened(probabilities: np.ndarray, power: float) -> np.ndarray:
    """p**power renormalised: softmax(logits * power), i.e. a model off by a temperature of `power`."""
    raised = probabilities**power
    return raised / raised.sum(axis=1, keepdims=True)


# Forty answers ranked by confidence (rank r has confidence 1 - r/100), wrong at ranks 3, 20 and 31-40.
RANKED_WRONG = {3, 20, *range(31, 41)}


def ranked_answers() -> tuple[np.ndarray, np.ndarray]:
    confidence = np.array([1 - r / 100 for r in range(1, 41)])
    probabilities = np.stack([confidence, 1 - confidence], axis=1)  # always predicts class 0
    labels = np.array([1 if r in RANKED_WRONG else 0 for r in range(1, 41)])
    return probabilities, labels


def test_the_module_loads_without_tensorflow() -> None:
    code = (
        "import sys, simpsons_core.inference.calibration; "
        "assert not {'keras', 'tensorflow'} & set(sys.modules), 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_balanced_accuracy_weighs_a_rare_class_as_much_as_a_common_one() -> None:
    # Eight class-0 images all found, two class-1 images both missed, no class-2 images at all.
    labels = np.array([0] * 8 + [1] * 2)
    predicted = np.zeros(10, dtype=int)
    assert np.mean(predicted == labels) == pytest.approx(0.8)
    assert per_class_recall(labels, predicted, num_classes=3) == [1.0, 0.0, None]
    assert balanced_accuracy(labels, predicted, num_classes=3) == pytest.approx(0.5)


def test_ece_of_a_hand_worked_example() -> None:
    assert expected_calibration_error(TINY_PROBABILITIES, TINY_LABELS) == pytest.approx(TINY_ECE)
    filled = [
        (b.lower, b.upper, b.count, b.confidence, b.accuracy)
        for b in reliability_bins(TINY_PROBABILITIES, TINY_LABELS)
        if b.count
    ]
    np.testing.assert_allclose(
        filled, [(0.6, 0.7, 1, 0.65, 0.0), (0.8, 0.9, 2, 0.85, 0.5), (0.9, 1.0, 1, 0.95, 1.0)]
    )


def test_reliability_bins_cover_zero_to_one_and_a_confidence_on_an_edge_closes_its_bin() -> None:
    table = reliability_bins([[0.5, 0.5], [1.0, 0.0]], [0, 0], bins=10)
    assert len(table) == 10 and table[0].lower == 0.0 and table[-1].upper == 1.0
    assert [b.count for b in table] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert table[0].confidence is None and table[0].accuracy is None


def test_an_over_confident_model_gets_a_temperature_above_one_and_lower_ece() -> None:
    probabilities, labels = calibrated_sample()
    over_confident = sharpened(probabilities, 3.0)
    temperature = fit_temperature(over_confident, labels)
    assert temperature == pytest.approx(3.0, rel=0.15)
    calibrated = apply_temperature(over_confident, temperature)
    assert (
        expected_calibration_error(calibrated, labels)
        < expected_calibration_error(over_confident, labels) / 3
    )
    assert negative_log_likelihood(calibrated, labels) < negative_log_likelihood(over_confident, labels)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), over_confident.argmax(axis=1))


def test_an_under_confident_model_gets_a_temperature_below_one() -> None:
    probabilities, labels = calibrated_sample(seed=1)
    under_confident = sharpened(probabilities, 0.5)
    temperature = fit_temperature(under_confident, labels)
    assert temperature == pytest.approx(0.5, rel=0.15)
    calibrated = apply_temperature(under_confident, temperature)
    assert expected_calibration_error(calibrated, labels) < expected_calibration_error(
        under_confident, labels
    )


def test_a_calibrated_model_keeps_a_temperature_near_one() -> None:
    probabilities, labels = calibrated_sample(seed=2)
    assert fit_temperature(probabilities, labels) == pytest.approx(1.0, abs=0.1)


def test_temperature_is_one_when_scaling_cannot_help_and_stays_within_bounds() -> None:
    uniform = np.full((6, 3), 1 / 3)
    assert fit_temperature(uniform, [0, 1, 2, 0, 1, 2]) == 1.0
    always_right = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert fit_temperature(always_right, [0, 1]) == pytest.approx(0.05, rel=1e-3)  # the sharpest allowed


def test_apply_temperature_softens_and_sharpens_like_dividing_the_logits() -> None:
    logits = np.array([[2.0, 0.0, -1.0]])
    probabilities = np.exp(logits) / np.exp(logits).sum()
    expected = np.exp(logits / 2) / np.exp(logits / 2).sum()
    np.testing.assert_allclose(apply_temperature(probabilities, 2.0), expected)
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(probabilities, 0.0)


def test_choose_threshold_takes_the_lowest_cut_that_meets_the_target() -> None:
    probabilities, labels = ranked_answers()
    # Top 31 answers: 28 right (90.3%); top 32: 28 right (87.5%). So the cut is rank 31's confidence.
    threshold = choose_threshold(probabilities, labels, target_accuracy=0.9, min_answered=10)
    assert threshold.reached
    assert threshold.confidence == pytest.approx(0.69)
    assert threshold.coverage == pytest.approx(31 / 40)
    assert threshold.accuracy == pytest.approx(28 / 31)
    assert threshold.answers(0.70) and threshold.answers(0.69) and not threshold.answers(0.68)
    assert (
        threshold.sentence == "answer at confidence >= 0.690: 77.5% of images answered, 90.32% of them right"
        " (target 90%)"
    )


def test_choose_threshold_needs_enough_answers_before_trusting_a_cut() -> None:
    probabilities, labels = ranked_answers()
    # Only the top two answers are all right (rank 3 is wrong): a cut there rests on two answers.
    lucky = choose_threshold(probabilities, labels, target_accuracy=0.97, min_answered=1)
    assert (lucky.confidence, lucky.coverage) == pytest.approx((0.98, 2 / 40))
    unreachable = choose_threshold(probabilities, labels, target_accuracy=0.97, min_answered=10)
    assert not unreachable.reached
    assert (unreachable.confidence, unreachable.coverage, unreachable.accuracy) == (1.0, 0.0, None)
    assert not unreachable.answers(1.0)
    assert unreachable.sentence == "no confidence cut reaches 97% accuracy with at least 10 answers"


def test_the_sure_threshold_never_goes_below_even_odds() -> None:
    """Four classes, every answer right: any cut meets the target, yet answers under 50% are not "sure"."""
    confidences = np.linspace(0.3, 0.99, 40)
    probabilities = np.stack([confidences, *[(1 - confidences) / 3] * 3], axis=1)
    threshold = choose_threshold(probabilities, np.zeros(40, dtype=int), min_answered=10)
    assert threshold.reached and threshold.confidence >= SURE_FLOOR == 0.5
    assert threshold.confidence == pytest.approx(confidences[confidences >= 0.5].min())
    assert threshold.coverage == pytest.approx((confidences >= 0.5).mean())


def test_a_cut_never_splits_answers_of_equal_confidence() -> None:
    # Two answers at 0.9, one right one wrong, below a right one at 0.95: 2 of 3 at the 0.9 cut.
    probabilities = [[0.95, 0.05], [0.9, 0.1], [0.9, 0.1]]
    curve = coverage_curve(probabilities, [0, 0, 1])
    np.testing.assert_allclose(
        [(p.threshold, p.coverage, p.accuracy) for p in curve], [(0.9, 1.0, 2 / 3), (0.95, 1 / 3, 1.0)]
    )
    threshold = choose_threshold(probabilities, [0, 0, 1], target_accuracy=0.7, min_answered=1)
    assert threshold.confidence == pytest.approx(0.95)


def test_confident_errors_counts_wrong_answers_at_or_above_the_bar() -> None:
    sure = np.array([[0.9, 0.1]] * 20 + [[0.99, 0.01]] * 21 + [[0.6, 0.4]] * 9)
    labels = np.array([1] * 3 + [0] * 38 + [1] * 9)  # 3 confident mistakes; the unsure ones are all wrong
    errors = confident_errors(sure, labels, at=0.9)
    assert errors == ConfidentErrors(wrong=3, answered=41, at=0.9)
    assert errors.sentence == "confident errors: 3 of 41 answers at >= 90% were wrong"
    assert errors.rate == pytest.approx(3 / 41)
    assert ConfidentErrors(wrong=0, answered=0, at=0.9).rate == 0.0


def test_trust_summary_survives_json() -> None:
    summary = trust_summary(TINY_PROBABILITIES, TINY_LABELS)
    assert summary.accuracy == pytest.approx(0.5)
    assert summary.balanced_accuracy == pytest.approx(0.5)
    assert summary.ece == pytest.approx(TINY_ECE)
    assert summary.confident_errors == ConfidentErrors(wrong=0, answered=1, at=0.9)
    assert TrustSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary


@pytest.fixture(scope="module")
def keras_module():
    import keras

    keras.utils.set_random_seed(3)
    return keras


@pytest.mark.parametrize("temperature", [2.5, 0.4])
def test_fold_temperature_makes_the_model_answer_as_apply_temperature_does(keras_module, temperature) -> None:
    keras = keras_module
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    inputs = np.random.default_rng(0).normal(scale=3.0, size=(32, 4)).astype("float32")
    before = model.predict(inputs, verbose=0)
    fold_temperature(model, temperature)
    after = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(after, apply_temperature(before, temperature), atol=1e-5)


def test_fold_temperature_keeps_a_mixed_precision_head_in_float32(keras_module) -> None:
    keras = keras_module
    head = keras.layers.Dense(3, activation="softmax", dtype="mixed_float16")
    model = keras.Sequential([keras.Input((4,)), head])
    kernel = keras.ops.convert_to_numpy(head.kernel)
    fold_temperature(model, 2.0)
    assert head.kernel.dtype == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head.kernel), kernel / 2)


def test_fold_temperature_refuses_a_model_that_does_not_end_in_a_softmax_dense(keras_module) -> None:
    keras = keras_module
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Activation("softmax")])
    with pytest.raises(ValueError, match=r"needs .* Dense layer with a softmax.* last layer is Activation"):
        fold_temperature(model, 2.0)


def test_a_target_met_exactly_counts_despite_float_rounding() -> None:
    # 55 right of 100 is exactly 55%, though 0.55 * 100 is 55.00000000000001 in floating point.
    probabilities = np.full((100, 2), [0.8, 0.2])
    labels = np.array([0] * 55 + [1] * 45)
    threshold = choose_threshold(probabilities, labels, target_accuracy=0.55, min_answered=1)
    assert threshold.reached and threshold.coverage == 1.0
