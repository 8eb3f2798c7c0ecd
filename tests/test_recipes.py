"""The two recipes: the tutorial's reproduced exactly, the studio default, and honest figures for every run
(the leak-free validation accuracy beside the test split's, which carries its overlap with training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simpsons_core.cli.main import main as cli_main
from simpsons_core.config import DEFAULT_RECIPE, STUDIO_AUGMENT, AugmentConfig, TrainConfig, recipe

keras = pytest.importorskip("keras")

from simpsons_core.training.models import build_model  # noqa: E402
from simpsons_core.training.trainer import learning_rate, train_in_foreground  # noqa: E402

TUTORIAL_LAYERS = ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]


def test_the_tutorial_recipe_is_the_seed_exactly() -> None:
    """Its network, its ImageDataGenerator arguments, 10 epochs of batch 32, Adam at a constant 1e-3, and
    validation on the dataset's test split, as the seed did. Every field is spelled out, so a changed default
    anywhere shows up here."""
    config = recipe("tutorial")
    assert config == TrainConfig(
        data_dir="",
        recipe="tutorial",
        model="tutorial",
        image_size=64,
        epochs=10,
        batch_size=32,
        learning_rate=1e-3,
        lr_schedule="constant",
        seed=1337,
        validation="test",
        validation_fraction=0.2,
        early_stopping_patience=0,
        strategy="auto",
        class_weights="none",
        precision="auto",
        augment=AugmentConfig(
            rescale=1.0 / 255.0,
            shear_degrees=0.2,
            zoom=0.2,
            width_shift=0.2,
            height_shift=0.2,
            fill_mode="nearest",
            horizontal_flip=True,
            rotation_degrees=0.0,
            crop_area=0.0,
            brightness=0.0,
            contrast=0.0,
            saturation=0.0,
            hue=0.0,
        ),
    )
    assert config.augment == AugmentConfig()  # the augmentation defaults stay the tutorial's
    model = build_model(config.model, config.image_size, 4)
    layers = [layer.__class__.__name__ for layer in model.layers]
    assert layers == TUTORIAL_LAYERS and model.count_params() == 10_874_700
    assert learning_rate(config, steps_per_epoch=195) == 1e-3  # a constant, not a schedule


def test_the_pretrained_recipe_is_the_default_and_fine_tunes_lite0_with_the_studio_augmentation() -> None:
    config = recipe(DEFAULT_RECIPE)
    assert DEFAULT_RECIPE == "pretrained" and config.recipe == "pretrained"
    assert (config.model, config.image_size, config.validation) == ("lite0", 128, "split")
    assert (
        config.augment == STUDIO_AUGMENT and config.augment.rescale == 1 / 255
    )  # what Lite0's input expects


def test_the_studio_recipe_is_the_field_defaults_and_validates_without_leaks() -> None:
    config = recipe("studio")
    assert config == TrainConfig()
    assert (config.model, config.validation, config.lr_schedule) == ("compact", "split", "cosine")
    assert config.augment == STUDIO_AUGMENT != AugmentConfig()
    assert STUDIO_AUGMENT.crop_area > 0 and STUDIO_AUGMENT.rotation_degrees > 0 and STUDIO_AUGMENT.hue > 0
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine"):
        TrainConfig(lr_schedule="linear")


def test_a_cosine_schedule_decays_from_the_learning_rate_to_zero_over_the_planned_steps() -> None:
    config = TrainConfig(learning_rate=0.002, epochs=4, lr_schedule="cosine")
    schedule = learning_rate(config, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 20, 40)]
    assert rates == pytest.approx([0.002, 0.001, 0.0], abs=1e-7)
    assert learning_rate(config.replace(lr_schedule="constant"), steps_per_epoch=10) == 0.002


def test_the_cli_overrides_the_schedule_and_the_augmentation(capsys: pytest.CaptureFixture[str]) -> None:
    from simpsons_core.cli.main import build_parser
    from simpsons_core.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--recipe", "tutorial", "--lr-schedule", "cosine"])
    assert config_from_args(args) == recipe("tutorial").replace(lr_schedule="cosine")
    args = build_parser().parse_args(["train", "--augment", "tutorial"])
    assert config_from_args(args) == recipe(DEFAULT_RECIPE).replace(augment=AugmentConfig())
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--lr-schedule", "step"])
    assert "invalid choice: 'step'" in capsys.readouterr().err


def tiny(data: Path, **changes) -> TrainConfig:
    return TrainConfig(data_dir=str(data), image_size=32, batch_size=16, epochs=1).replace(**changes)


@pytest.mark.slow
def test_a_run_records_both_figures_and_the_cli_shows_them(
    workspace: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Validated on the leak-free split: the best model is scored on the test split too. Validated on the
    test split: that figure is the validation accuracy, and only the overlap is added."""
    split_run = train_in_foreground(tiny(tiny_dataset), workspace / "runs" / "20260101-000000-split")
    test_run = train_in_foreground(
        tiny(tiny_dataset, validation="test", lr_schedule="constant"),
        workspace / "runs" / "20260101-000001-test",
    )
    no_overlap = "no overlap with training found (0 of 24 near-duplicates)"

    assert split_run.state == "completed"
    test_accuracy = split_run.status["test_accuracy"]
    assert 0.0 <= test_accuracy <= 1.0 and split_run.status["test_overlap"] == no_overlap
    saved = (split_run.path / "evaluation-test.json").read_text()
    assert f'"accuracy": {test_accuracy}' in saved  # the Evaluate page's saved evaluation, made at the end
    assert split_run.config["dataset"]["validation_images"] == 4 * 5  # 20% of 24 a class, held out
    assert split_run.epochs[0]["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine: decayed to 0 by the end

    assert test_run.state == "completed"
    assert test_run.status["test_accuracy"] == test_run.best_val_accuracy
    assert test_run.status["test_overlap"] == no_overlap
    assert not (test_run.path / "evaluation-test.json").exists()  # nothing evaluated twice
    assert test_run.epochs[0]["lr"] == pytest.approx(1e-3)

    assert cli_main(["runs", "list"]) == 0
    _header, split_line, test_line = capsys.readouterr().out.splitlines()
    best = split_run.best_val_accuracy
    assert split_line.endswith(
        f"best val_accuracy {best:.3f} (leak-free split); test split {test_accuracy:.3f} ({no_overlap})"
    )
    assert test_line.endswith(
        f"best val_accuracy {test_run.best_val_accuracy:.3f} (on the test split, {no_overlap})"
    )
    assert cli_main(["runs", "show", split_run.id]) == 0
    shown = capsys.readouterr().out
    assert f"  accuracy: best val_accuracy {best:.3f} (leak-free split); test split" in shown


@pytest.mark.slow
def test_a_dataset_without_a_test_split_records_no_test_figure(workspace: Path, tmp_path: Path) -> None:
    from simpsons_core.data.demo import generate_demo_dataset

    data = generate_demo_dataset(tmp_path / "demo", train_per_class=12, test_per_class=1, seed=3)
    for image in (data / "simpson_testset").rglob("*.jpg"):
        image.unlink()
    info = train_in_foreground(tiny(data), workspace / "runs" / "20260101-000000-no-test")
    assert info.state == "completed" and info.best_val_accuracy is not None
    assert "test_accuracy" not in info.status and "test_overlap" not in info.status
    assert not (info.path / "evaluation-test.json").exists()


def test_every_recipe_is_described_and_the_default_is_one_of_them() -> None:
    from simpsons_core.config import DEFAULT_RECIPE, RECIPE_NOTES, RECIPES

    assert list(RECIPE_NOTES) == list(RECIPES) and DEFAULT_RECIPE in RECIPES
    assert all(config.recipe == name for name, config in RECIPES.items())
