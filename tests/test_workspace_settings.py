"""Which dataset is active and which augmentation training starts with, remembered per workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from simpsons_core import settings as ws
from simpsons_core.config import AugmentConfig


def test_environment_wins_over_the_remembered_folder(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    monkeypatch.delenv(ws.DATA_ENV, raising=False)
    ws.remember_dataset(chosen)
    assert ws.active_dataset() == ws.ActiveDataset(chosen.resolve(), "workspace")
    monkeypatch.setenv(ws.DATA_ENV, str(tmp_path))
    active = ws.active_dataset()
    assert active.path == tmp_path.resolve() and active.source == "environment"
    assert ws.DATA_ENV in active.describe()


def test_without_a_choice_the_demo_dataset_is_generated(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ws.DATA_ENV, raising=False)
    active = ws.active_dataset()
    assert active.is_demo and active.path.is_relative_to(workspace)
    assert any(active.path.rglob("*.png")) or any(active.path.rglob("*.jpg"))
    ws.remember_dataset(workspace)
    ws.forget_dataset()
    assert ws.active_dataset().is_demo


def test_remembering_a_missing_folder_or_a_file_is_refused(workspace: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        ws.remember_dataset(tmp_path / "nope")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        ws.remember_dataset(a_file)
    with pytest.raises(ValueError, match="Type the path"):
        ws.remember_dataset("  ")
    assert "dataset" not in ws.load_settings()


def test_training_augment_round_trips_and_survives_a_damaged_file(workspace: Path) -> None:
    assert ws.training_augment() is None
    chosen = AugmentConfig(zoom=0.4, horizontal_flip=False, rotation_degrees=15)
    ws.remember_training_augment(chosen)
    assert ws.training_augment() == chosen
    ws.settings_path().write_text("{ not json")
    assert ws.load_settings() == {} and ws.training_augment() is None
    ws.remember_training_augment(chosen)
    ws.remember_training_augment(None)
    assert ws.training_augment() is None


def test_an_invalid_stored_augment_is_ignored(workspace: Path) -> None:
    import json

    ws.settings_path().write_text(json.dumps({"training_augment": {"zoom": 5.0}}))
    assert ws.training_augment() is None
