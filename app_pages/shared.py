"""What several pages need: the active dataset, picking a run, and turning expected failures into messages.

Anything computed about data or runs lives in `simpsons_core`; this module only decides how it is shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from PIL import Image

from app_pages.catalogue import HOME, TRAIN
from simpsons_core import settings
from simpsons_core.data.folders import DatasetLayout, detect_layout
from simpsons_core.data.images import ImageError, open_rgb
from simpsons_core.errors import EXPECTED_ERRORS
from simpsons_core.run.folder import RunInfo
from simpsons_core.run.lookup import list_runs
from simpsons_core.run.summary import run_label


@contextmanager
def reported(action: str) -> Iterator[None]:
    """Show an expected failure inside the block as one st.error naming `action`; the page goes on."""
    try:
        yield
    except EXPECTED_ERRORS as error:
        st.error(f"{action}: {error}")


def show_image(path: str | Path, caption: str = "", side: int = 256) -> None:
    """An image file as an upright RGB thumbnail, or a caption saying why it cannot be shown."""
    try:
        image: Image.Image = open_rgb(Path(path), draft_size=side)
    except ImageError as error:
        st.caption(f"{caption} ({error})" if caption else str(error))
        return
    image.thumbnail((side, side))
    st.image(image, caption=caption or None, width="stretch")


def active_dataset() -> settings.ActiveDataset:
    with st.spinner("Drawing the demo dataset (first start only)..."):
        return settings.active_dataset()


def dataset_layout() -> DatasetLayout | None:
    """The active dataset's layout, or None after an error that says what is wrong and where to fix it."""
    active = active_dataset()
    try:
        layout = detect_layout(active.path)
    except ValueError as error:
        st.error(f"The active dataset cannot be used. {error}")
        st.page_link(HOME.path, label="Choose another dataset on the Home page", icon=":material/home:")
        return None
    if len(layout.classes) < 2:
        st.warning(
            f"{layout.root} has only one class ({layout.classes[0]}): a classifier needs at least two class "
            "folders to tell apart."
        )
    return layout


def completed_runs() -> list[RunInfo]:
    """Runs with a usable model, newest first."""
    return [info for info in reversed(list_runs()) if info.state == "completed" and info.model_path]


def pick_completed_run(label: str, key: str) -> RunInfo | None:
    """A select box over completed runs, the newest preselected; None, with a way forward, if none."""
    choices = completed_runs()
    if not choices:
        st.info(
            "There is no trained model yet. Train one on the Train page (a few minutes on the demo data), or "
            "from a terminal: `simpsons train`."
        )
        st.page_link(TRAIN.path, label="Go to Train", icon=":material/model_training:")
        return None
    by_id = {info.id: info for info in choices}
    return by_id[
        st.selectbox(label, list(by_id), format_func=lambda run_id: run_label(by_id[run_id]), key=key)
    ]
