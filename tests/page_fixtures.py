"""Workspaces for the page tests: nothing chosen, the tiny dataset active, an empty one, a trained run in
place. Test modules load them with `pytest_plugins = ["page_fixtures", "run_fixtures"]`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full demo dataset, drawn once per session (read-only)."""
    from simpsons_core.data.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo-source") / "demo")


@pytest.fixture
def unconfigured(workspace: Path, demo_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace with no dataset chosen anywhere, so the demo data is active (copied in rather than
    drawn again for every test); returns the workspace."""
    from simpsons_core import paths

    monkeypatch.delenv("SIMPSONS_DATA", raising=False)
    shutil.copytree(demo_dataset, paths.datasets_dir() / "demo")
    return workspace


@pytest.fixture
def on_dataset(workspace: Path, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace whose active dataset is the tiny demo dataset (through SIMPSONS_DATA)."""
    monkeypatch.setenv("SIMPSONS_DATA", str(tiny_dataset))
    return tiny_dataset


@pytest.fixture
def empty_dataset(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace whose active dataset is an empty folder."""
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.setenv("SIMPSONS_DATA", str(folder))
    return folder


@pytest.fixture
def workspace_run(on_dataset: Path, workspace: Path, trained_run: Path) -> Path:
    """A copy of the briefly trained run in this test's workspace (so a test may damage or delete it), without
    the evaluations other tests saved into the shared run."""
    target = workspace / "runs" / "20260101-120000-tutorial-demo"
    return Path(shutil.copytree(trained_run, target, ignore=shutil.ignore_patterns("evaluation-*.json")))
