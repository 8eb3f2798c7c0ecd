"""Running the dashboard's pages in Streamlit's AppTest (fixtures for them are in page_fixtures.py).

app.py turns an unexpected exception into an st.error starting "Something went wrong", so `assert_clean`
checks both that and AppTest's own exception list.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"
UNEXPECTED = "Something went wrong"


def open_page(name: str, timeout: float = 120) -> AppTest:
    """A fresh session (like a new browser tab) showing page `name` ("home", "train", ...)."""
    at = AppTest.from_file(str(APP), default_timeout=timeout).switch_page(f"app_pages/{name}.py").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if e.value.startswith(UNEXPECTED)]


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def with_name(elements, text: str) -> list[str]:
    """The values of `elements` that contain `text`."""
    return [value for value in texts(elements) if text in value]


def other_classes_dataset(tiny_dataset: Path, folder: Path) -> Path:
    """A copy of the tiny dataset with homer_simpson renamed ned_flanders: a class a model will not know."""
    shutil.copytree(tiny_dataset, folder)
    for split in ("simpsons_trainset", "simpson_testset"):
        (folder / split / "homer_simpson").rename(folder / split / "ned_flanders")
    for image in (folder / "simpson_testset" / "ned_flanders").iterdir():
        image.rename(image.with_name(image.name.replace("homer_simpson", "ned_flanders")))
    return folder
