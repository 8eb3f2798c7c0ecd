"""The workspace's remembered choices: which dataset is active, which augmentation training starts with, and
which of the user's own dataset folders the app may edit.

They live in `<SIMPSONS_HOME>/settings.json`, so the dashboard, a second browser tab and the CLI agree. The
`SIMPSONS_DATA` environment variable wins over the file, which lets a deployment or a test pin the dataset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simpsons_core import atomic, paths
from simpsons_core.config import AugmentConfig

DATA_ENV = "SIMPSONS_DATA"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class ActiveDataset:
    """The dataset every page works on, and why it is the one.

    Attributes:
        path: the dataset's root folder (it may have been deleted since it was chosen; callers check).
        source: "environment" (SIMPSONS_DATA), "workspace" (remembered in settings.json) or "demo".
    """

    path: Path
    source: str

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"

    def describe(self) -> str:
        if self.source == "environment":
            return f"{self.path} (set by the {DATA_ENV} environment variable)"
        if self.source == "workspace":
            return f"{self.path} (chosen in this workspace)"
        return f"the generated demo dataset in {self.path}"


def settings_path() -> Path:
    return paths.home() / SETTINGS_FILE


def load_settings() -> dict[str, Any]:
    """The saved settings; a missing or damaged file reads as no settings rather than an error."""
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update(**changes: Any) -> None:
    settings = load_settings()
    for key, value in changes.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    atomic.write_json(settings_path(), settings)


def active_dataset() -> ActiveDataset:
    """SIMPSONS_DATA, else the folder remembered in the workspace, else the demo data (made on first use)."""
    from_env = os.environ.get(DATA_ENV, "").strip()
    if from_env:
        return ActiveDataset(Path(from_env).expanduser().resolve(), "environment")
    remembered = load_settings().get("dataset")
    if isinstance(remembered, str) and remembered:
        return ActiveDataset(Path(remembered), "workspace")
    from simpsons_core.data.demo import ensure_demo_dataset

    return ActiveDataset(ensure_demo_dataset(), "demo")


def remember_dataset(folder: str | Path) -> Path:
    """Make `folder` the active dataset; ValueError if it is not an existing folder."""
    text = str(folder).strip()
    if not text:
        raise ValueError("Type the path of a folder first.")
    path = Path(text).expanduser().resolve()
    if not path.exists():
        raise ValueError(f"{path} does not exist.")
    if not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder of class folders.")
    _update(dataset=str(path))
    return path


def forget_dataset() -> None:
    """Go back to the demo data."""
    _update(dataset=None)


def training_augment() -> AugmentConfig | None:
    """The augmentation chosen on the Augmentation page for the next training run, if any and still valid."""
    stored = load_settings().get("training_augment")
    if not isinstance(stored, dict):
        return None
    try:
        return AugmentConfig.from_dict(stored)
    except (TypeError, ValueError):
        return None


def remember_training_augment(config: AugmentConfig | None) -> None:
    """Store (or with None, clear) the augmentation the Train page starts with."""
    _update(training_augment=config.to_dict() if config is not None else None)


def edit_consent_given(folder: Path) -> bool:
    """Whether the user agreed that the app may move files in `folder` (a dataset outside the workspace)."""
    granted = load_settings().get("edit_consent")
    return isinstance(granted, list) and str(folder) in granted


def remember_edit_consent(folder: Path) -> None:
    """Record that the user agreed to edits of `folder`: the app asks once per folder."""
    granted = load_settings().get("edit_consent")
    granted = [item for item in granted if isinstance(item, str)] if isinstance(granted, list) else []
    if str(folder) not in granted:
        _update(edit_consent=[*granted, str(folder)])
