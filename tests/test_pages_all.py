"""Every page renders, without an unexpected error, on the demo data and on an empty workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from page_helpers import open_page

from app_pages.catalogue import PAGES as CATALOGUE

pytest_plugins = ["page_fixtures", "run_fixtures"]

PAGES = tuple(Path(entry.path).stem for entry in CATALOGUE)  # every page the navigation lists
TITLES = {Path(entry.path).stem: entry.title for entry in CATALOGUE} | {"home": "Simpsons Studio"}


@pytest.mark.parametrize("name", PAGES)
def test_each_page_renders_on_the_demo_data(unconfigured: Path, name: str) -> None:
    at = open_page(name)
    assert at.title[0].value == TITLES[name]
    assert not at.error


@pytest.mark.parametrize("name", PAGES)
def test_each_page_renders_on_an_empty_workspace(empty_dataset: Path, name: str) -> None:
    at = open_page(name)
    assert at.title[0].value == TITLES[name]
    if name == "make_dataset":  # it makes a new dataset, whatever the active one is
        assert not at.error
    elif name in ("evaluate", "predict"):
        assert any("There is no trained model yet" in info.value for info in at.info)
    else:
        assert any("The active dataset cannot be used" in error.value for error in at.error)
