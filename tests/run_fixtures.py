"""A briefly trained run, shared by the prediction, evaluation, explanation and export tests (one training per
test session). Test modules load it with `pytest_plugins = ["run_fixtures"]`."""

from __future__ import annotations

from pathlib import Path

import pytest

from simpsons_core.config import TrainConfig
from simpsons_core.inference.calibration import MIN_ANSWERED, TARGET_ACCURACY
from simpsons_core.run.folder import Calibration, RunFolder


@pytest.fixture(scope="session")
def trained_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial network trained 1 epoch at 32 px on the tiny demo dataset; its run folder (read-only).

    Its leak-free validation split (under 20 images) is smaller than `calibration.MIN_ANSWERED`: the run is
    calibrated (a temperature) but has no "sure" threshold. A test that needs one writes it into a copy with
    `record_threshold`.
    """
    from simpsons_core.training.trainer import train_in_foreground

    home = tmp_path_factory.mktemp("trained-home")
    config = TrainConfig(data_dir=str(tiny_dataset), model="tutorial", image_size=32, epochs=1, batch_size=16)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMPSONS_HOME", str(home))
        folder = home / "runs" / "trained"
        info = train_in_foreground(config, folder)
    assert (folder / "model.keras").is_file(), info
    return folder


def record_threshold(folder: Path, threshold: float) -> Calibration:
    """Record in a copied run's status.json a calibration with this "sure" threshold, as training would have
    on a validation split big enough to choose one (the figures besides the threshold are made up)."""
    calibration = Calibration(
        validation_images=400,
        temperature=1.0,
        ece_before=0.05,
        ece_after=0.05,
        nll_before=0.5,
        nll_after=0.5,
        threshold=threshold,
        coverage=0.88,
        accuracy=0.975,
        target=TARGET_ACCURACY,
        reached=True,
        min_answered=MIN_ANSWERED,
    )
    RunFolder(folder).update_status(calibration=calibration.to_dict())
    return calibration
