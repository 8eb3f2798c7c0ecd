"""A briefly trained run, shared by the prediction, evaluation, explanation and export tests (one training per
test session). Test modules load it with `pytest_plugins = ["run_fixtures"]`."""

from __future__ import annotations

from pathlib import Path

import pytest

from simpsons_core.config import TrainConfig


@pytest.fixture(scope="session")
def trained_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial network trained 1 epoch at 32 px on the tiny demo dataset; its run folder (read-only)."""
    from simpsons_core.training.trainer import train_in_foreground

    home = tmp_path_factory.mktemp("trained-home")
    config = TrainConfig(data_dir=str(tiny_dataset), model="tutorial", image_size=32, epochs=1, batch_size=16)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMPSONS_HOME", str(home))
        folder = home / "runs" / "trained"
        info = train_in_foreground(config, folder)
    assert (folder / "model.keras").is_file(), info
    return folder
