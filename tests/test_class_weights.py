"""Balanced class weights: inverse class frequency of the training side, the setting in the config and the
CLI, the weights a real run records, and the scan's advice to use them."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from simpsons_core.config import BALANCED_WEIGHTS_ABOVE, DEFAULT_RECIPE, TrainConfig
from simpsons_core.data.scan import class_weights_advice, scan_dataset
from simpsons_core.training.trainer import class_weights
from tests.test_hostile_data import write_classes

pytest_plugins = ["page_fixtures"]

BALANCED = TrainConfig(class_weights="balanced")


def test_balanced_weights_are_the_inverse_class_frequency_of_the_training_images() -> None:
    labels = np.array([0] * 6 + [1] * 2 + [2] * 4)
    weights = class_weights(BALANCED, labels, 3)
    assert weights == pytest.approx({0: 12 / (3 * 6), 1: 12 / (3 * 2), 2: 12 / (3 * 4)})
    assert np.mean([weights[label] for label in labels]) == pytest.approx(1.0)  # the loss keeps its scale


def test_a_class_without_training_images_gets_no_weight() -> None:
    assert class_weights(BALANCED, np.array([0, 0, 2]), 3) == pytest.approx({0: 0.5, 2: 1.0})


def test_no_weights_unless_balanced_is_asked() -> None:
    assert TrainConfig().class_weights == "none"
    assert class_weights(TrainConfig(), np.array([0, 0, 0, 1]), 2) is None


def test_the_class_weights_setting_must_be_none_or_balanced() -> None:
    with pytest.raises(ValueError, match="class_weights must be one of none, balanced, not 'inverse'"):
        TrainConfig(class_weights="inverse")
    assert TrainConfig.from_dict(BALANCED.to_dict()) == BALANCED


def test_the_cli_option_sets_class_weights(capsys: pytest.CaptureFixture[str]) -> None:
    from simpsons_core.cli.main import build_parser
    from simpsons_core.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--class-weights", "balanced"])
    assert config_from_args(args).class_weights == "balanced"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--class-weights", "inverse"])
    assert "invalid choice: 'inverse'" in capsys.readouterr().err


def test_the_scan_suggests_balanced_weights_only_above_the_ratio(tmp_path: Path, workspace: Path) -> None:
    skewed = scan_dataset(write_classes(tmp_path / "skewed", {"bart": 8, "homer": 3}))
    advice = class_weights_advice(skewed)
    assert advice is not None
    assert "2.67 times" in advice and f"above {BALANCED_WEIGHTS_ABOVE}" in advice
    assert "`train --class-weights balanced`" in advice and "Train page" in advice
    assert advice in skewed.to_text()

    at_the_ratio = scan_dataset(write_classes(tmp_path / "at", {"bart": 6, "homer": 4}))  # exactly 1.5
    assert class_weights_advice(at_the_ratio) is None
    assert "class-weights" not in at_the_ratio.to_text()


@pytest.mark.slow
def test_a_balanced_run_trains_with_the_weights_it_records(tmp_path: Path, workspace: Path) -> None:
    from simpsons_core.training.trainer import train_in_foreground

    data = write_classes(tmp_path / "data", {"bart": 18, "homer": 6, "lisa": 6})
    config = TrainConfig(
        data_dir=str(data),
        model="tutorial",
        image_size=32,
        epochs=1,
        batch_size=8,
        class_weights="balanced",
        precision="float32",
    )
    info = train_in_foreground(config, workspace / "runs" / "balanced")
    assert info.state == "completed", info.error
    counts = info.dataset["train_per_class"]
    total = sum(counts.values())
    expected = {name: round(total / (3 * count), 4) for name, count in counts.items()}
    assert info.status["class_weights"] == expected
    assert expected["bart"] < 1 < expected["homer"]
    assert info.config["class_weights"] == "balanced"


@pytest.mark.slow
def test_the_train_page_starts_a_run_with_its_class_weights_and_precision(on_dataset: Path) -> None:
    from page_helpers import assert_clean, open_page

    from simpsons_core.run.lookup import read_run

    at = open_page("train")
    key = f"train_{DEFAULT_RECIPE}_"
    at.selectbox(key=key + "model").set_value("tutorial")
    at.number_input(key=key + "epochs").set_value(1)
    at.number_input(key=key + "size").set_value(32)
    at.selectbox(key=key + "class_weights").set_value("balanced")
    at.selectbox(key=key + "precision").set_value("float32")
    next(button for button in at.button if button.label == "Start training").click().run()
    assert_clean(at)
    run_id = at.session_state.watched_run
    deadline = time.monotonic() + 240
    while (info := read_run(run_id)).state == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert info.state == "completed", info.error
    assert (info.config["class_weights"], info.config["precision"]) == ("balanced", "float32")
    assert set(info.status["class_weights"]) == set(info.dataset["classes"])
    assert info.status["precision"]["reason"] == "float32: asked"
