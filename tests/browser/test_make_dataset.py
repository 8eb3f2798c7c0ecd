"""Teachable Machine's loop in a real Chromium with its fake camera: make a dataset on the Make a dataset
page, fill one class with single webcam shots and the other with a burst, then train on it for one epoch.

The session's dashboard pins its dataset with SIMPSONS_DATA, which would keep a new dataset from becoming the
active one, so this module has a dashboard of its own (this `dashboard` overrides conftest's for its tests),
whose workspace starts on a small generated dataset (so no demo data is drawn).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from browser_support import Dashboard, screenshot
from conftest import served
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SLOW_MS = 120_000  # what waits on TensorFlow on a busy 2-core machine
TRAINING_LIMIT_MS = 180_000
SHOTS = 3
BURST = 5
# The fresh camera's video has frames to capture (HTMLMediaElement.HAVE_CURRENT_DATA or more).
CAMERA_STREAMING = (
    "() => [...document.querySelectorAll('[data-testid=stCameraInput] video')].some(v => v.readyState >= 2)"
)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    from simpsons_core import settings
    from simpsons_core.data.demo import generate_demo_dataset

    base = tmp_path_factory.mktemp("make-dataset")
    home = base / "home"
    data = generate_demo_dataset(base / "data", train_per_class=4, test_per_class=1, seed=3, size=64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMPSONS_HOME", str(home))
        settings.remember_dataset(data)
    env = {key: value for key, value in os.environ.items() if key != settings.DATA_ENV}
    with served(base, home, data, env) as dashboard:
        yield dashboard


def class_count(page: Page, name: str, count: int):
    text = f"{name} · {count} picture{'' if count == 1 else 's'}"
    return page.get_by_test_id("stMarkdown").filter(has_text=re.compile(rf"^{re.escape(text)}$"))


def choose(page: Page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label, exact=True)
    box.fill(option)
    box.press("Enter")
    expect(box).to_have_value(option)


def test_two_classes_filled_from_the_webcam_train_for_an_epoch(page: Page, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/make_dataset")
    expect(page.get_by_role("heading", name="Make a dataset", exact=True)).to_be_visible()
    page.get_by_text("Start a new dataset").click()
    for label, value in (("Name", "webcam"), ("Classes (optional, separated by commas)", "left, right")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name="Create the dataset").click()
    expect(page.get_by_text("it is the active dataset now")).to_be_visible()
    expect(class_count(page, "left", 0)).to_be_visible()

    # Every frame of the fake camera shows one scene (one near-duplicate cluster): the split then holds out
    # each class's last pictures and says that validation overlaps training (tests/test_splits.py).
    page.get_by_role("radio", name="Webcam", exact=True).click()
    for shot in range(1, SHOTS + 1):  # one click, one picture: a fresh camera after each
        take = page.get_by_test_id("stCameraInputButton")
        expect(take).to_have_text("Take Photo")
        expect(take).to_be_enabled()
        page.wait_for_function(
            CAMERA_STREAMING, timeout=SLOW_MS
        )  # the button is enabled before the video plays
        take.click()
        expect(class_count(page, "left", shot)).to_be_visible()

    choose(page, "Add pictures to", "right")
    page.get_by_role("radio", name="Webcam burst", exact=True).click()
    pictures = page.get_by_label("Pictures", exact=True)
    pictures.fill(str(BURST))
    pictures.press("Tab")
    page.get_by_role("button", name="Turn on the camera").click()
    burst = page.get_by_role("button", name=re.compile(rf"^Take {BURST} pictures"))
    expect(burst).to_be_enabled()
    burst.click()
    expect(class_count(page, "right", BURST)).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_role("button", name=f"Undo: {BURST} pictures added to right")).to_be_visible()
    assert len(list((dashboard.home / "datasets" / "webcam" / "right").glob("camera-*.jpg"))) == BURST
    expect(page.get_by_role("button", name="Turn off the camera")).to_be_visible()  # on for the next burst
    page.get_by_text("Start a new dataset").click()  # folded away for the screenshot
    expect(page.get_by_label("Name", exact=True)).to_be_hidden()
    page.get_by_role("heading", name="Make a dataset", exact=True).scroll_into_view_if_needed()
    screenshot(page, "make-dataset")

    page.goto(f"{dashboard.url}/train")
    expect(page.get_by_text(str(dashboard.home / "datasets" / "webcam"))).to_be_visible(timeout=SLOW_MS)
    page.get_by_role("radio", name="studio", exact=True).click()
    form = page.locator(".st-key-train_form")
    for label, value in (("Epochs", "1"), ("Image size (pixels)", "32"), ("Batch size", "4")):
        field = form.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name="Start training").click()
    ended = page.get_by_test_id("stAlertContainer").filter(
        has_text=re.compile(r"^(Completed|Failed|Cancelled)")
    )
    expect(ended).to_be_visible(timeout=TRAINING_LIMIT_MS)
    expect(ended).to_contain_text("Completed.")
