"""Every page in a real Chromium: walk them, move a slider, train with live curves (and reattach after a
refresh), evaluate, predict an upload, a webcam photo and a corrupt file. The tests share one dashboard and
run in file order: the run trained on the Train page is the model the later pages use."""

from __future__ import annotations

import io
import re

import pytest
from browser_support import Dashboard, screenshot
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

# Generous limits for what waits on TensorFlow (importing it, tracing a model) on a busy 2-core machine.
SLOW_MS = 120_000
TRAINING_LIMIT_MS = 180_000


def open_page(tab: Page, dashboard: Dashboard, path: str, title: str) -> None:
    tab.goto(f"{dashboard.url}/{path}")
    expect(tab.get_by_role("heading", name=title, exact=True)).to_be_visible()


def alert(tab: Page, text: str):
    return tab.get_by_test_id("stAlertContainer").filter(has_text=text)


def test_home_shows_the_active_dataset_and_where_to_go(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "", "Simpsons Studio")
    expect(
        page.get_by_text(f"{dashboard.data} (set by the SIMPSONS_DATA environment variable)")
    ).to_be_visible()
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="classes")).to_contain_text("4")
    expect(page.get_by_text("No training run yet.")).to_be_visible()
    for name in ("Home", "Dataset", "Augmentation", "Train", "Evaluate", "Predict"):
        expect(page.get_by_test_id("stSidebarNav").get_by_text(name, exact=True)).to_be_visible()
    screenshot(page, "1-home")


def test_dataset_page_shows_counts_samples_and_health(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "dataset", "Dataset")
    expect(page.get_by_role("strong").filter(has_text="bart_simpson")).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    expect(page.get_by_text("Health report")).to_be_visible()
    expect(page.get_by_test_id("stImage").nth(8)).to_be_visible()
    screenshot(page, "2-dataset")


def test_moving_an_augmentation_slider_changes_the_preview(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "augmentation", "Augmentation")
    expect(page.get_by_test_id("stImage")).to_have_count(4 * 6, timeout=SLOW_MS)  # 4 classes: original + 5
    first_copy = page.get_by_test_id("stImage").nth(1).locator("img")
    before = first_copy.get_attribute("src")
    slider = page.get_by_test_id("stSlider").filter(has_text="Rotation").get_by_role("slider")
    slider.focus()
    for _ in range(30):
        slider.press("ArrowRight")
    rotation = page.get_by_test_id("stSlider").filter(has_text="Rotation")
    expect(rotation).to_contain_text("40")  # the studio recipe's 10, plus 30
    page.get_by_role("button", name="Apply").click()
    expect(first_copy).not_to_have_attribute("src", before or "", timeout=SLOW_MS)
    screenshot(page, "3-augmentation")


def test_training_shows_live_curves_reattaches_after_refresh_and_completes(
    page: Page, dashboard: Dashboard
) -> None:
    open_page(page, dashboard, "train", "Train")
    expect(alert(page, "No run is training")).to_be_visible(timeout=SLOW_MS)
    form = page.locator(".st-key-train_form")
    for label, value in (("Epochs", "1"), ("Image size (pixels)", "32"), ("Batch size", "16")):
        field = form.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()

    page.reload()  # a refresh finds the running run again
    expect(page.get_by_text(re.compile(r"^\d{8}-\d{6}-[a-z0-9-]+-data"))).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()

    expect(alert(page, "Completed.")).to_be_visible(timeout=TRAINING_LIMIT_MS)
    live_chart = page.get_by_test_id("stPlotlyChart").first
    expect(live_chart.locator(".scatterlayer .trace").first).to_be_attached()
    expect(live_chart.locator(".scatterlayer .point").first).to_be_attached()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(2)  # the history's overlay of runs
    screenshot(page, "4-train")


def test_evaluate_page_scores_the_run(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "evaluate", "Evaluate")
    page.get_by_text("the dataset's test split").click()
    page.get_by_role("button", name="Evaluate").click()
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="balanced accuracy")).to_contain_text("%", timeout=SLOW_MS)
    expect(metrics.filter(has_text="calibration error")).to_be_visible()
    expect(page.get_by_text("Mistakes, most confidently wrong first")).to_be_visible()
    screenshot(page, "5-evaluate")


def upload(page: Page, name: str, data: bytes, mime: str) -> None:
    """Into the Predict page's uploader (the "Import a model" panel has one too)."""
    uploader = page.locator(".st-key-predict_uploads").get_by_test_id("stFileUploaderDropzoneInput")
    uploader.set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_predict_an_upload_a_corrupt_file_and_a_webcam_photo(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "predict", "Predict")
    picture = sorted((dashboard.data / "simpson_testset" / "marge_simpson").glob("*.jpg"))[0]
    upload(page, "marge.jpg", picture.read_bytes(), "image/jpeg")
    result = page.get_by_test_id("stMarkdown").filter(has_text=re.compile(r"_simpson \(\d+\.\d%\)"))
    expect(result.first).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_test_id("stImageCaption").filter(has_text="marge.jpg")).to_be_visible()
    screenshot(page, "6-predict")

    upload(page, "broken.png", b"\x89PNG\r\n\x1a\n this is not a picture", "image/png")
    expect(alert(page, "broken.png is not an image")).to_be_visible()

    page.get_by_role("tab", name="Webcam").click()
    take = page.get_by_test_id("stCameraInputButton")
    expect(take).to_be_enabled(timeout=30_000)
    take.click()
    expect(page.get_by_test_id("stImageCaption").filter(has_text="Webcam photo")).to_be_visible(
        timeout=SLOW_MS
    )
    screenshot(page, "7-predict-webcam")


def test_explain_overlays_grad_cam(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "predict", "Predict")
    buffer = io.BytesIO()
    Image.open(sorted((dashboard.data / "simpson_testset" / "bart_simpson").glob("*.jpg"))[0]).save(
        buffer, "PNG"
    )
    upload(page, "bart.png", buffer.getvalue(), "image/png")
    expect(page.get_by_test_id("stImageCaption").filter(has_text="bart.png")).to_be_visible(timeout=SLOW_MS)
    page.get_by_text("Explain: overlay the Grad-CAM heatmap").click()
    expect(page.get_by_test_id("stImageCaption").filter(has_text="Grad-CAM")).to_be_visible(timeout=SLOW_MS)
