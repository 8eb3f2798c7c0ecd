"""Where data and runs live: one setting, `SIMPSONS_HOME`, defaulting to `workspace/` in the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The workspace folder (created on demand); `SIMPSONS_HOME` overrides the default."""
    path = Path(os.environ.get("SIMPSONS_HOME") or REPO_ROOT / "workspace").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = home() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    """Datasets the app made or unpacked (the demo data, uploaded zips)."""
    path = home() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def trash_dir() -> Path:
    """Where deleted runs go: moved, never erased, so a wrong click can be undone by hand."""
    path = home() / "trash"
    path.mkdir(parents=True, exist_ok=True)
    return path
