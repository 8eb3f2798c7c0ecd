"""Every numeric training setting is checked as a finite number in range, with a message naming it: NaN and
infinity compare False with everything, so a plain range check let `--lr nan` train a "completed" model whose
predictions were NaN."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from simpsons_core import paths
from simpsons_core.cli.main import main
from simpsons_core.config import AugmentConfig, TrainConfig

NON_FINITE = [math.nan, math.inf, -math.inf]
AUGMENT_FLOATS = [
    "rescale",
    "shear_degrees",
    "zoom",
    "width_shift",
    "height_shift",
    "rotation_degrees",
    "crop_area",
    "brightness",
    "contrast",
    "saturation",
    "hue",
]


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(
    "name",
    ["learning_rate", "validation_fraction", "early_stopping_patience", "batch_size", "epochs", "image_size"],
)
def test_a_non_finite_training_setting_is_refused_by_name(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be a (finite|whole) number .*, not {value!r}\.$"):
        TrainConfig(**{name: value})


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("name", AUGMENT_FLOATS)
def test_a_non_finite_augmentation_setting_is_refused_by_name(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number .*, not {value!r}\.$"):
        AugmentConfig(**{name: value})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"early_stopping_patience": -3},
            "early_stopping_patience must be a whole number at least 0, not -3.",
        ),
        ({"learning_rate": 0}, "learning_rate must be a finite number above 0, not 0."),
        ({"learning_rate": -1e-3}, "learning_rate must be a finite number above 0, not -0.001."),
        ({"epochs": 0}, "epochs must be a whole number at least 1, not 0."),
        ({"epochs": 2.5}, "epochs must be a whole number at least 1, not 2.5."),
        ({"batch_size": True}, "batch_size must be a whole number at least 1, not True."),
        ({"image_size": 8}, "image_size must be a whole number at least 16 and at most 512, not 8."),
        ({"validation_fraction": 1.0}, "validation_fraction must be a finite number above 0 and below 1"),
        ({"seed": -1}, "seed must be a whole number at least 0 and at most 4294967295, not -1."),
        ({"learning_rate": "0.001"}, "learning_rate must be a finite number above 0, not '0.001'."),
        ({"augment": "none"}, "augment must be a set of augmentation settings (a JSON object), not 'none'."),
    ],
)
def test_out_of_range_and_wrongly_typed_settings_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        TrainConfig(**changes)
    assert str(raised.value).startswith(message)


def test_augmentation_ranges_and_the_recipes_still_hold() -> None:
    with pytest.raises(
        ValueError, match=r"^zoom must be a finite number at least 0 and below 1, not 1\.0\.$"
    ):
        AugmentConfig(zoom=1.0)
    with pytest.raises(
        ValueError, match=re.escape("hue must be a finite number at least 0 and at most 0.5, not 0.6.")
    ):
        AugmentConfig(hue=0.6)
    with pytest.raises(ValueError, match=re.escape("horizontal_flip must be true or false, not 'yes'.")):
        AugmentConfig(horizontal_flip="yes")
    # Bounds that are allowed stay allowed, and a saved config reads back equal.
    edge = AugmentConfig(hue=0.5, rotation_degrees=180, shear_degrees=0, rescale=1)
    assert AugmentConfig.from_dict(edge.to_dict()) == edge
    config = TrainConfig(learning_rate=1e30, early_stopping_patience=0, image_size=512, seed=2**32 - 1)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="augment must be a set of augmentation settings"):
        TrainConfig.from_dict({**config.to_dict(), "augment": "none"})


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--lr", "nan", "learning_rate"),
        ("--patience", "-3", "early_stopping_patience"),
        ("--lr", "inf", "learning_rate"),
    ],
)
def test_the_train_command_refuses_nonsense_before_making_a_run(
    workspace: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture, option: str, value: str, field: str
) -> None:
    code = main(["train", "--data", str(tiny_dataset), option, value])
    assert code == 2
    assert f"{field} must be a" in capsys.readouterr().err
    assert not [p for p in paths.runs_dir().iterdir() if p.is_dir()]  # no run folder was made
