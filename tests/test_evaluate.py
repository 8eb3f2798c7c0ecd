"""Evaluation figures against a hand-computed confusion matrix and trust figures, flat name-labelled folders,
splits, the CLI, and evaluations saved before the trust figures existed.

The hand-checked run holds a real Keras model whose answer we control: it averages the image's colour and its
softmax logits are 20 x (mean red, mean green, mean blue), so a red picture is "bart_simpson", green
"homer_simpson", blue "lisa_simpson", with probabilities we can write down.
"""

from __future__ import annotations

import json
import math
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simpsons_core.cli.main import main
from simpsons_core.config import TrainConfig
from simpsons_core.inference.calibration import coverage_curve
from simpsons_core.inference.evaluate import (
    COVERAGE_POINTS,
    coverage_points,
    evaluate,
    read_evaluation,
    score,
)

pytest_plugins = ["run_fixtures"]

LABELS = ["bart_simpson", "homer_simpson", "lisa_simpson"]
RED, GREEN, DIM_GREEN, DIM_BLUE, BLUE = (255, 0, 0), (0, 255, 0), (0, 200, 0), (0, 0, 120), (0, 0, 255)
# (true class, colour) of each test image, and so its predicted class (the strongest channel).
TEST_IMAGES = [
    ("bart_simpson", RED),
    ("bart_simpson", RED),
    ("bart_simpson", RED),
    ("bart_simpson", DIM_GREEN),  # -> homer
    ("homer_simpson", GREEN),
    ("homer_simpson", GREEN),
    ("homer_simpson", DIM_BLUE),  # -> lisa
    ("homer_simpson", RED),  # -> bart
    ("lisa_simpson", BLUE),
]
# Worked out by hand from the list above: rows are the true class, columns the predicted one.
CONFUSION = [[3, 1, 0], [1, 2, 1], [0, 0, 1]]
PRECISION = [3 / 4, 2 / 3, 1 / 2]
RECALL = [3 / 4, 2 / 4, 1 / 1]
F1 = [3 / 4, 4 / 7, 2 / 3]
SUPPORT = [4, 4, 1]
# Every answer has top confidence above 0.99 (the weakest, dim blue, is e^9.4 / (e^9.4 + 2)), so all nine are
# "confident" and fall in the top reliability bin; three of them are wrong.
BALANCED_ACCURACY = (3 / 4 + 2 / 4 + 1 / 1) / 3
ECE = 1 - 6 / 9  # |accuracy 6/9 - mean confidence ~1| in the one bin used
# Full red, green and blue give one and the same confidence (1.0 in float32): seven answers, six right. Dim
# green (wrong) is a little less sure, dim blue (wrong) less still. Cuts ascending: all nine, eight, seven.
COVERAGE = [(9 / 9, 6 / 9), (8 / 9, 6 / 8), (7 / 9, 6 / 7)]
TRUST_LINES = [
    "balanced accuracy 0.750 (mean per-class recall)",
    "expected calibration error 0.333 (ECE, 10 bins: mean gap between confidence and accuracy)",
    "confident errors: 3 of 9 answers at >= 90% were wrong",
]


def loss_of(colour_channel_value: int) -> float:
    """-ln p(true) when the winning logit is 20 * value / 255 and the true class's logit is 0."""
    return math.log(2 + math.exp(20 * colour_channel_value / 255))


def save_png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), colour).save(path)


@pytest.fixture
def colour_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "colours"
    for label, colour in zip(LABELS, (RED, GREEN, BLUE), strict=True):
        save_png(root / "simpsons_trainset" / label / "pic_0.png", colour)
    for n, (label, colour) in enumerate(TEST_IMAGES):
        save_png(root / "simpson_testset" / label / f"{label}_{n}.png", colour)
    save_png(root / "simpson_testset" / "maggie_simpson" / "maggie_simpson_1.png", RED)
    (root / "simpson_testset" / "bart_simpson" / "bart_simpson_99.png").write_bytes(b"broken")
    return root


@pytest.fixture
def colour_run(workspace: Path, colour_dataset: Path) -> str:
    """A completed run whose model's outputs are known in closed form."""
    import keras

    from simpsons_core.run.launcher import create_completed_run

    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.layers[-1].set_weights([20 * np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    config = TrainConfig(data_dir=str(colour_dataset), image_size=16, model="tutorial")
    return create_completed_run(model, LABELS, config, "colours")


def assert_hand_computed(evaluation) -> None:
    assert evaluation.labels == LABELS
    assert evaluation.images == len(TEST_IMAGES)
    assert evaluation.confusion == CONFUSION
    assert evaluation.accuracy == pytest.approx(6 / 9)
    for report, precision, recall, f1, support in zip(
        evaluation.classes, PRECISION, RECALL, F1, SUPPORT, strict=True
    ):
        assert (report.precision, report.recall, report.f1) == pytest.approx((precision, recall, f1))
        assert report.support == support
    worst = [(m.true_label, m.predicted) for m in evaluation.mistakes]
    assert worst == [
        ("homer_simpson", "bart_simpson"),
        ("bart_simpson", "homer_simpson"),
        ("homer_simpson", "lisa_simpson"),
    ]
    assert [m.loss for m in evaluation.mistakes] == pytest.approx(
        [loss_of(255), loss_of(200), loss_of(120)], rel=1e-3
    )
    first = evaluation.mistakes[0]
    assert first.probabilities["bart_simpson"] == pytest.approx(1.0, abs=1e-6)
    assert sum(first.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    trust = evaluation.trust
    assert trust.balanced_accuracy == pytest.approx(BALANCED_ACCURACY)
    assert trust.per_class_recall == pytest.approx(RECALL)
    assert trust.ece == pytest.approx(ECE, abs=1e-4)
    assert (trust.confident_errors.wrong, trust.confident_errors.answered) == (3, 9)
    assert [b.count for b in trust.reliability] == [0] * 9 + [9]
    np.testing.assert_allclose([(p.coverage, p.accuracy) for p in evaluation.coverage], COVERAGE)


def test_figures_match_the_hand_computed_confusion_matrix(colour_run: str, workspace: Path) -> None:
    with pytest.warns(UserWarning, match="bart_simpson_99.png"):
        evaluation = evaluate(colour_run, split="test")
    assert_hand_computed(evaluation)
    assert evaluation.unknown_classes == {"maggie_simpson": 1}
    assert [Path(path).name for path, _ in evaluation.skipped] == ["bart_simpson_99.png"]
    saved = json.loads((workspace / "runs" / colour_run / "evaluation-test.json").read_text())
    assert saved["confusion"] == CONFUSION
    assert saved["trust"]["balanced_accuracy"] == pytest.approx(BALANCED_ACCURACY)
    assert saved["trust"]["confident_errors"] == {"wrong": 3, "answered": 9, "at": 0.9}
    assert len(saved["trust"]["reliability"]) == 10 and len(saved["coverage"]) == len(COVERAGE)
    assert read_evaluation(colour_run, "test") == evaluation


def test_an_evaluation_saved_without_the_trust_figures_still_loads(colour_run: str, workspace: Path) -> None:
    with pytest.warns(UserWarning, match="bart_simpson_99.png"):
        evaluation = evaluate(colour_run, split="test")
    path = workspace / "runs" / colour_run / "evaluation-test.json"
    older = json.loads(path.read_text())
    del older["trust"], older["coverage"]
    path.write_text(json.dumps(older))
    loaded = read_evaluation(colour_run, "test")
    assert loaded is not None and loaded.trust is None and loaded.coverage is None
    assert loaded.confusion == evaluation.confusion and loaded.mistakes == evaluation.mistakes
    text = loaded.table()
    assert "9 images, accuracy 0.667" in text
    assert "balanced accuracy -\nexpected calibration error -\nconfident errors: -" in text


def test_the_saved_coverage_curve_is_thinned_to_a_few_points_keeping_both_ends() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=500)
    labels = rng.integers(0, 3, size=500)
    full = coverage_curve(probabilities, labels)
    thinned = coverage_points(probabilities, labels)
    assert len(full) == 500 and len(thinned) == COVERAGE_POINTS
    assert thinned[0] == full[0] and thinned[-1] == full[-1]
    assert all(a.threshold < b.threshold for a, b in pairwise(thinned))
    assert set(thinned) <= set(full)
    assert coverage_points(probabilities[:9], labels[:9]) == coverage_curve(probabilities[:9], labels[:9])


def test_flat_folder_labelled_by_name(colour_run: str, colour_dataset: Path, tmp_path: Path) -> None:
    flat = tmp_path / "kaggle_simpson_testset"
    flat.mkdir()
    for path in (colour_dataset / "simpson_testset").rglob("*.png"):
        shutil.copy(path, flat / path.name)
    with pytest.warns(UserWarning, match="bart_simpson_99.png"):
        evaluation = evaluate(colour_run, data_dir=flat)
    assert_hand_computed(evaluation)
    assert evaluation.unknown_classes == {"maggie_simpson": 1}
    assert evaluation.split == "folder:kaggle_simpson_testset"
    assert read_evaluation(colour_run, "folder:kaggle_simpson_testset") == evaluation


def test_score_handles_classes_never_predicted_or_absent() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]])
    accuracy, confusion, classes = score(LABELS, np.array([0, 1]), probabilities)
    assert accuracy == 0.5
    assert confusion.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert [(c.precision, c.recall, c.f1, c.support) for c in classes] == [
        (0.5, 1.0, pytest.approx(2 / 3), 1),
        (0.0, 0.0, 0.0, 1),
        (0.0, 0.0, 0.0, 0),
    ]


def test_no_known_class_is_a_clear_error(colour_run: str, tmp_path: Path) -> None:
    folder = tmp_path / "others"
    save_png(folder / "maggie_simpson_1.png", RED)
    with pytest.raises(ValueError, match="None of the 1 images"):
        evaluate(colour_run, data_dir=folder)


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """The shared run, copied: evaluating saves a file into the run folder that other tests read."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def test_validation_split_is_the_runs_own(run_copy: Path) -> None:
    from simpsons_core.data.splits import split_for_training
    from simpsons_core.run.lookup import resolve_run, run_dataset

    info = resolve_run(run_copy)
    _, validation = split_for_training(run_dataset(info), info.train_config())
    evaluation = evaluate(run_copy, split="validation")
    assert evaluation.images == len(validation) > 0
    assert sum(map(sum, evaluation.confusion)) == evaluation.images
    assert evaluation.leak_note is None
    assert "validation" in evaluation.source


def test_test_split_carries_the_overlap_note(run_copy: Path) -> None:
    from simpsons_core.data.splits import overlap_with_training
    from simpsons_core.run.lookup import resolve_run, run_dataset

    evaluation = evaluate(run_copy, split="test")
    overlap = overlap_with_training(run_dataset(resolve_run(run_copy)))
    assert evaluation.leak_note == overlap.phrase
    assert f"of {overlap.test_images} near-duplicates" in evaluation.leak_note
    assert evaluation.images == 24


def test_cli_prints_the_table(colour_run: str, capsys) -> None:
    with pytest.warns(UserWarning, match="bart_simpson_99.png"):
        assert main(["evaluate", colour_run, "--split", "test"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    accuracy = next(i for i, line in enumerate(lines) if line.startswith("9 images, accuracy 0.667"))
    assert lines[accuracy + 1 : accuracy + 4] == TRUST_LINES
    assert "homer_simpson -> bart_simpson" in out
    assert "maggie_simpson (1)" in out
    assert "bart_simpson_99.png: " in out  # the unreadable file, listed
    with pytest.raises(SystemExit):  # argparse refuses an unknown split
        main(["evaluate", colour_run, "--split", "nope"])
