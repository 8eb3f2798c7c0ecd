"""Calibration after training: the saved model's probabilities made truthful, and the confidence from which
its answers were right often enough to be called "sure".

The training process calls `calibrate_run` once the model is saved, while the run is still "running" (phase
"calibrating"), so no reader ever sees a completed run before it is calibrated. One temperature T is fitted on
the run's leak-free validation images and folded into the file every consumer loads (`RunFolder.model_path`:
best.keras, or model.keras when there is no best.keras), so prediction, evaluation, Grad-CAM and every export
give calibrated probabilities without knowing T exists. The "sure" threshold is then chosen on the calibrated
validation probabilities: the lowest confidence at which answers were `calibration.TARGET_ACCURACY` right.

Only the leak-free validation split is used. The dataset's test split may share near-duplicates with training,
so a threshold chosen there would promise an accuracy that memory delivered: a run validated on the test split
stays uncalibrated, and says so. Failing to calibrate never fails a trained run; status.json records why.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from simpsons_core.inference.calibration import (
    MIN_ANSWERED,
    TARGET_ACCURACY,
    apply_temperature,
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
    negative_log_likelihood,
)
from simpsons_core.run.folder import Calibration, RunFolder
from simpsons_core.run.summary import calibration_line

if TYPE_CHECKING:
    from simpsons_core.config import TrainConfig
    from simpsons_core.data.decoding import DecodedImages
    from simpsons_core.training.control import RunProgress

PHASE = "calibrating"


def calibrate_run(
    run: RunFolder, config: TrainConfig, val_images: DecodedImages, progress: RunProgress | None = None
) -> Calibration:
    """Calibrate the run's saved model on its validation images and record the result in status.json
    (`calibration`); returns it. Never raises for a model that cannot be calibrated: the record then carries
    the reason in `problem`, and the saved model is left as it was."""
    run.update_status(phase=PHASE)
    if progress:
        progress({"type": "phase", "phase": PHASE, "done": 0, "total": 0})
    try:
        calibration = _calibrate_saved_model(run, config, val_images)
    except Exception as error:  # a trained model must survive anything that goes wrong here
        calibration = Calibration(
            validation_images=len(val_images), problem=f"not calibrated: {str(error) or repr(error)}"
        )
    print(calibration_line(calibration), file=sys.stderr, flush=True)
    run.update_status(calibration=calibration.to_dict())
    return calibration


def fit_calibration(probabilities: np.ndarray, labels: np.ndarray) -> Calibration:
    """T fitted on validation `probabilities` (the model's, before calibration) against their true `labels`,
    the figures before and after, and the threshold chosen on the calibrated probabilities.

    No threshold (None, `reached` False) when no cut with at least `MIN_ANSWERED` answers is
    `TARGET_ACCURACY` right, which is always so on fewer than `MIN_ANSWERED` images (`too_few_images`).
    """
    temperature = fit_temperature(probabilities, labels)
    calibrated = apply_temperature(probabilities, temperature)
    cut = choose_threshold(calibrated, labels, TARGET_ACCURACY, MIN_ANSWERED)
    return Calibration(
        validation_images=len(labels),
        temperature=temperature,
        ece_before=expected_calibration_error(probabilities, labels),
        ece_after=expected_calibration_error(calibrated, labels),
        nll_before=negative_log_likelihood(probabilities, labels),
        nll_after=negative_log_likelihood(probabilities, labels, temperature),
        threshold=cut.confidence if cut.reached else None,
        coverage=cut.coverage,
        accuracy=cut.accuracy,
        target=cut.target,
        reached=cut.reached,
        min_answered=cut.min_answered,
    )


def _calibrate_saved_model(run: RunFolder, config: TrainConfig, val_images: DecodedImages) -> Calibration:
    """Fit on the validation images, fold T into the model file readers use and save it (atomically) under
    the same name. Raises ValueError for a run validated on the test split or a model whose last layer is not
    a softmax Dense layer (`fold_temperature`)."""
    if config.validation != "split":
        raise ValueError("the run validated on the dataset's test split, which may overlap training")
    import keras

    from simpsons_core.data.pipeline import evaluation_dataset

    path = run.model_path
    if path is None:
        raise FileNotFoundError("no model was saved")
    # compile=False, as every consumer loads it: the optimizer state, which no consumer reads, is not kept.
    model = keras.saving.load_model(path, compile=False)
    probabilities = model.predict(evaluation_dataset(val_images, config), verbose=0)
    calibration = fit_calibration(probabilities, val_images.labels)
    fold_temperature(model, calibration.temperature)
    run.save_model(model, best=path == run.model_file(best=True))
    return calibration
