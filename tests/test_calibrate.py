"""Calibration after training: a trained run records its temperature and threshold, its saved model gives the
calibrated probabilities, a threshold needs enough validation images, and nothing here can fail a run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from simpsons_core.cli.main import main
from simpsons_core.config import TrainConfig
from simpsons_core.data.decoding import DecodedImages, decode_images
from simpsons_core.data.folders import detect_layout
from simpsons_core.inference.calibration import MIN_ANSWERED, TARGET_ACCURACY, apply_temperature
from simpsons_core.run.folder import RunFolder
from simpsons_core.run.lookup import read_run
from simpsons_core.training.calibrate import calibrate_run, fit_calibration

pytest_plugins = ["run_fixtures"]


def outputs(model_file: Path, pixels: np.ndarray) -> np.ndarray:
    """A saved model's probabilities for model inputs."""
    import keras

    model = keras.saving.load_model(model_file, compile=False)
    return np.asarray(model.predict_on_batch(pixels), dtype=np.float64)


def pipeline_outputs(model_file: Path, images: DecodedImages, config: TrainConfig) -> np.ndarray:
    """A saved model's probabilities for decoded images, through the evaluation pipeline as in calibration."""
    import keras

    from simpsons_core.data.pipeline import evaluation_dataset

    model = keras.saving.load_model(model_file, compile=False)
    return np.asarray(model.predict(evaluation_dataset(images, config), verbose=0), dtype=np.float64)


def scaled_pixels(count: int = 8) -> np.ndarray:
    """Model inputs (0..1, as the run's rescale makes them) that are not all alike."""
    return np.random.default_rng(0).random((count, 32, 32, 3), dtype=np.float32)


def two_class_answers(confident: int, unsure: int) -> tuple[np.ndarray, np.ndarray]:
    """`confident` answers at 0.95-0.99, all right, then `unsure` at 0.55-0.65, every other one wrong starting
    with the most confident of them. With 30 confident answers one more wrong one is already under 97%, so a
    97% cut keeps exactly the confident ones."""
    high = np.linspace(0.99, 0.95, confident)
    low = np.linspace(0.65, 0.55, unsure)
    probabilities = np.stack([np.concatenate([high, low]), 1 - np.concatenate([high, low])], axis=1)
    labels = np.concatenate([np.zeros(confident), np.arange(unsure) % 2 == 0]).astype(np.int64)
    return probabilities, labels


def test_a_trained_run_records_its_calibration_and_its_best_model_gives_calibrated_probabilities(
    trained_run: Path,
) -> None:
    info = read_run(trained_run)
    calibration = info.calibration
    assert calibration is not None and calibration.problem is None
    assert calibration.temperature > 0 and calibration.nll_after <= calibration.nll_before
    assert 0 <= calibration.ece_after <= 1 and 0 <= calibration.ece_before <= 1
    assert calibration.validation_images == info.dataset["validation_images"]
    assert (calibration.target, calibration.min_answered) == (TARGET_ACCURACY, MIN_ANSWERED)
    # The fixture's validation split is too small to choose a threshold: answers carry no verdict.
    assert calibration.too_few_images and not calibration.reached and calibration.threshold is None
    assert info.threshold is None
    # One epoch: best.keras was saved at its end with the weights model.keras got after training, so
    # model.keras is best.keras as it was before calibration folded T into it.
    pixels = scaled_pixels()
    np.testing.assert_allclose(
        outputs(trained_run / "best.keras", pixels),
        apply_temperature(outputs(trained_run / "model.keras", pixels), calibration.temperature),
        atol=1e-5,
    )


def test_calibrating_folds_t_into_the_file_readers_use_and_records_it(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    run = RunFolder(shutil.copytree(trained_run, tmp_path / "run"))
    config = read_run(run.path).train_config()
    labels = read_run(run.path).labels
    # Enough labelled images for a threshold (the training folder's: what they are does not matter here).
    images = decode_images(detect_layout(tiny_dataset).train, labels, config.image_size)
    assert len(images) >= MIN_ANSWERED
    pixels = scaled_pixels()
    before, last = outputs(run.model_file(best=True), pixels), run.model_file().read_bytes()
    validation = pipeline_outputs(run.model_file(best=True), images, config)

    calibration = calibrate_run(run, config, images)

    assert calibration.to_dict() == pytest.approx(fit_calibration(validation, images.labels).to_dict())
    assert read_run(run.path).calibration == calibration
    assert read_run(run.path).status["phase"] == "calibrating"  # the trainer goes on to finish the run
    after = outputs(run.model_file(best=True), pixels)
    np.testing.assert_allclose(after, apply_temperature(before, calibration.temperature), atol=1e-5)
    assert run.model_file().read_bytes() == last  # readers use best.keras: model.keras stays as trained
    assert not [p.name for p in run.path.iterdir() if p.name.startswith(".")]  # saved atomically


def test_a_threshold_is_chosen_on_enough_calibrated_validation_answers_or_not_at_all() -> None:
    probabilities, labels = two_class_answers(confident=30, unsure=30)
    chosen = fit_calibration(probabilities, labels)
    calibrated = apply_temperature(probabilities, chosen.temperature)
    assert chosen.reached and not chosen.too_few_images
    assert chosen.threshold == pytest.approx(calibrated[:30].max(axis=1).min())
    assert chosen.coverage == 0.5 and chosen.accuracy == 1.0

    too_few = fit_calibration(*two_class_answers(confident=MIN_ANSWERED - 5, unsure=0))
    assert too_few.too_few_images and not too_few.reached and too_few.threshold is None

    never_right_enough = fit_calibration(*two_class_answers(confident=0, unsure=60))
    assert not never_right_enough.too_few_images and not never_right_enough.reached


def test_the_recorded_calibration_gives_each_run_its_verdict_threshold(workspace: Path) -> None:
    """A threshold when one was reached; infinity (every answer "not sure") when enough images reached none;
    no verdict on too few images, when not calibrated, or for a run from before calibration."""
    run = RunFolder(workspace / "runs" / "r")
    run.path.mkdir(parents=True)
    cases = {
        "reached": fit_calibration(*two_class_answers(confident=30, unsure=30)),
        "not reached": fit_calibration(*two_class_answers(confident=0, unsure=60)),
        "too few": fit_calibration(*two_class_answers(confident=10, unsure=0)),
    }
    thresholds = {}
    for name, calibration in cases.items():
        run.update_status(calibration=calibration.to_dict())
        assert read_run(run.path).calibration == calibration
        thresholds[name] = read_run(run.path).threshold
    assert thresholds == {"reached": cases["reached"].threshold, "not reached": np.inf, "too few": None}
    run.update_status(calibration={"validation_images": 40, "problem": "not calibrated: why"})
    assert read_run(run.path).threshold is None
    run.update_status(calibration=None)
    assert read_run(run.path).calibration is None and read_run(run.path).threshold is None


def test_a_run_validated_on_the_test_split_is_not_calibrated_and_keeps_its_model(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    run = RunFolder(shutil.copytree(trained_run, tmp_path / "run"))
    config = read_run(run.path).train_config().replace(validation="test")
    saved = run.model_file(best=True).read_bytes()
    images = decode_images(detect_layout(tiny_dataset).test, read_run(run.path).labels, config.image_size)
    calibration = calibrate_run(run, config, images)
    assert calibration.temperature is None and calibration.threshold is None
    assert calibration.problem == (
        "not calibrated: the run validated on the dataset's test split, which may overlap training"
    )
    assert read_run(run.path).calibration == calibration and read_run(run.path).threshold is None
    assert run.model_file(best=True).read_bytes() == saved


def test_a_model_not_ending_in_a_softmax_dense_layer_is_recorded_as_not_calibrated(
    trained_run: Path, tmp_path: Path
) -> None:
    """An imported or hand-built model may end in a separate softmax: calibration says so and goes on."""
    import keras

    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(4), keras.layers.Softmax()]
    )
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.save_model(model)
    saved = run.model_file().read_bytes()
    config = read_run(trained_run).train_config()
    count = MIN_ANSWERED
    images = DecodedImages(
        pixels=np.zeros((count, 32, 32, 3), np.uint8),
        labels=np.arange(count, dtype=np.int32) % 4,
        paths=[Path(f"{i}.png") for i in range(count)],
    )
    calibration = calibrate_run(run, config, images)
    assert calibration.problem.startswith("not calibrated: fold_temperature needs a model whose last layer")
    assert calibration.validation_images == count
    assert read_run(run.path).calibration == calibration
    assert run.model_file().read_bytes() == saved


def test_runs_show_prints_the_calibration_line(workspace: Path, trained_run: Path, capsys) -> None:
    copy = shutil.copytree(trained_run, workspace / "runs" / "20260101-000000-copy")
    calibration = read_run(copy).calibration
    assert main(["runs", "show", copy.name]) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.startswith("  calibration: "))
    assert line.startswith(
        f"  calibration: T {calibration.temperature:.2f}, "
        f"ECE {calibration.ece_before:.3f} -> {calibration.ece_after:.3f}. "
    )
    assert line.endswith(
        f"needs at least {MIN_ANSWERED} validation images, and this run had {calibration.validation_images}."
    )
