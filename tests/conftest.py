"""Shared fixtures: a private workspace per test and small generated datasets (no real frames needed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep TensorFlow quiet and on this machine's two cores in every test process and every child it starts.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SIMPSONS_HOME for one test, so runs, caches and settings never leak between tests."""
    home = tmp_path / "workspace"
    home.mkdir()
    monkeypatch.setenv("SIMPSONS_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One SIMPSONS_HOME for a whole test module, for work done once (a shared run, converted weights)."""
    home = tmp_path_factory.mktemp("module-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMPSONS_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset in the tutorial's layout, small enough to train on in seconds (shared, read-only)."""
    from simpsons_core.data.demo import generate_demo_dataset

    return generate_demo_dataset(
        tmp_path_factory.mktemp("tiny") / "demo", train_per_class=24, test_per_class=6, seed=7
    )


def shared_dataset(name: str) -> Path | None:
    """A dataset from ../shared/datasets (or $SIMPSONS_SHARED_DATASETS), when this machine has it."""
    base = Path(
        os.environ.get("SIMPSONS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared/datasets")
    )
    path = base / name
    return path if path.is_dir() else None
