"""The dashboard's pages, listed once: `app.py` builds `st.navigation` from it and Home links to each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageEntry:
    """One page: its script, title and icon, and the line Home's "Where next" says about it."""

    path: str
    title: str
    icon: str
    blurb: str


HOME = PageEntry("app_pages/home.py", "Home", ":material/home:", "")
PAGES = (
    HOME,
    PageEntry(
        "app_pages/make_dataset.py",
        "Make a dataset",
        ":material/add_a_photo:",
        "classes from uploads and the webcam, fixed with undo",
    ),
    PageEntry(
        "app_pages/dataset.py", "Dataset", ":material/photo_library:", "counts, samples and a health check"
    ),
    PageEntry("app_pages/augmentation.py", "Augmentation", ":material/tune:", "see what training will do"),
    PageEntry("app_pages/train.py", "Train", ":material/model_training:", "start a run, watch its curves"),
    PageEntry("app_pages/evaluate.py", "Evaluate", ":material/fact_check:", "confusion matrix and mistakes"),
    PageEntry("app_pages/predict.py", "Predict", ":material/image_search:", "try your own pictures"),
)
TRAIN = next(page for page in PAGES if page.title == "Train")
