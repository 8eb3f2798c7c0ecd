"""Home: which dataset is active (and how to change it), the latest run, and where to go next."""

from __future__ import annotations

import streamlit as st

from app_pages.catalogue import HOME, PAGES
from app_pages.shared import EXPECTED_ERRORS, active_dataset, dataset_layout, run_label
from simpsons_core import paths, settings
from simpsons_core.data import zip_import
from simpsons_core.run.lookup import list_runs

NOTICE = "home_notice"


def use_folder() -> None:
    try:
        path = settings.remember_dataset(st.session_state.folder_path)
        st.session_state[NOTICE] = ("success", f"Now using {path}.", [])
    except ValueError as error:
        st.session_state[NOTICE] = ("error", f"That folder cannot be used: {error}", [])


def unpack_zip() -> None:
    upload = st.session_state.zip_upload
    if upload is None:
        st.session_state[NOTICE] = ("error", "Choose a .zip file first.", [])
        return
    try:
        report = zip_import.import_zip(upload, upload.name)
        settings.remember_dataset(report.root)
        st.session_state[NOTICE] = ("success", report.summary(), report.skipped)
    except EXPECTED_ERRORS as error:
        st.session_state[NOTICE] = ("error", f"The zip could not be used: {error}", [])


def use_demo() -> None:
    settings.forget_dataset()
    st.session_state[NOTICE] = ("success", "Back to the demo dataset.", [])


st.title("Simpsons Studio")
st.write(
    "From a folder of labelled images to a trained Keras classifier and back: look at the data, tune the "
    "augmentation, train with live curves, see where the model goes wrong, and try it on your own pictures."
)

data_column, run_column = st.columns([3, 2], gap="large")

with data_column:
    st.subheader("Dataset")
    active = active_dataset()
    st.markdown(f"**Active:** {active.describe()}")
    if notice := st.session_state.pop(NOTICE, None):
        kind, text, skipped = notice
        getattr(st, kind)(text)
        if skipped:
            with st.expander(f"{len(skipped)} file(s) left out of the zip"):
                st.dataframe([{"file": name, "reason": reason} for name, reason in skipped], hide_index=True)
    layout = dataset_layout()
    if layout is not None:
        st.caption(layout.description)
        counts = {
            "classes": len(layout.classes),
            "training images": len(layout.train),
            "test images": len(layout.test),
        }
        for column, (name, value) in zip(st.columns(len(counts)), counts.items(), strict=True):
            column.metric(name, value)

    if active.source == "environment":
        st.info(
            f"The {settings.DATA_ENV} environment variable chooses the dataset; unset it to choose one here."
        )
    else:
        with st.expander("Use another dataset", expanded=layout is None):
            folder_tab, zip_tab = st.tabs(["A folder on this computer", "Upload a .zip"])
            with folder_tab:
                st.text_input(
                    "Folder path",
                    key="folder_path",
                    placeholder="/home/me/simpsons",
                    help="A folder of class subfolders (bart_simpson/*.jpg ...), train/ + test/, or the "
                    "tutorial's simpsons_trainset/ + simpson_testset/.",
                )
                st.button("Use this folder", on_click=use_folder)
            with zip_tab:
                st.file_uploader(
                    "A .zip of class folders",
                    type=["zip"],
                    key="zip_upload",
                    help=f"Unpacked into {paths.datasets_dir()}; only "
                    "images are kept, at most "
                    f"{zip_import.MAX_FILES:,} entries and {zip_import.MAX_TOTAL_BYTES // 1024**3} GB.",
                )
                st.button("Unpack and use", on_click=unpack_zip)
            if not active.is_demo:
                st.button("Back to the demo data", on_click=use_demo)

with run_column:
    st.subheader("Latest run")
    runs = list_runs()
    if not runs:
        st.write("No training run yet.")
    else:
        latest = runs[-1]
        st.markdown(f"**{run_label(latest)}**")
        state_text = {"running": "training now", "completed": "completed"}.get(latest.state, latest.state)
        accuracy = latest.best_val_accuracy
        left, right = st.columns(2)
        left.metric("state", state_text)
        right.metric("best validation accuracy", f"{accuracy:.1%}" if accuracy is not None else "-")
        if latest.error:
            st.warning(latest.error)

    st.subheader("Where next")
    for entry in PAGES:
        if entry != HOME:
            st.page_link(entry.path, label=f"{entry.title}: {entry.blurb}", icon=entry.icon)
