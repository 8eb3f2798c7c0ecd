"""Make a dataset: Teachable Machine's loop in the app. Create a dataset in the workspace (it becomes the
active one, so Train works on it at once), add and rename classes, fill a class from uploads (pictures or a
zip), the webcam (a picture per click) or a webcam burst (N pictures at an interval), and watch each class
fill. A second tab shows one class at a time to pick the pictures that do not belong and move or remove them,
with undo."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages.camera_burst import RESOLUTIONS, BurstSettings, burst_camera
from app_pages.shared import (
    EXPECTED_ERRORS,
    active_dataset,
    class_pictures,
    edit_notice,
    edit_panel,
    grid_cells,
    may_edit,
    notify,
    picture_box,
    plural,
    thumbnail,
    undo_and_trash,
)
from simpsons_core import settings
from simpsons_core.data import editing
from simpsons_core.data.images import IMAGE_SUFFIXES

PAGE = "make_page"  # notices of the page: a dataset or class made or renamed
ADD = "make_add"  # the pictures added: their notices, Undo and trash
FIX = "make_fix"
NEWEST_SHOWN = 8  # thumbnails of each class in the overview, newest first, four to a row
OVERVIEW_COLUMNS = 4
GRID_COLUMNS = 6
GRID_PAGE = 36  # pictures of the checked class per page
THUMBNAIL_SIDE = 160
UPLOAD_TYPES = [*sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES), "zip"]
UPLOADS = "make_uploads"  # + a counter: a new key empties the uploader once its files are added
CAMERA = "make_camera"  # + a counter: a new key readies the camera for the next picture
TARGET = "make_target"
LAST_PHOTO = "make_last_photo"
SOURCES = ("Upload files", "Webcam", "Webcam burst")
DEFAULT_RESOLUTION = "720p"


def bump(key: str) -> None:
    st.session_state[key] = st.session_state.get(key, 0) + 1


def create() -> None:
    name = st.session_state.get("make_name", "")
    classes = [item for item in st.session_state.get("make_classes", "").split(",") if item.strip()]
    try:
        folder = editing.create_dataset(name, classes)
        settings.remember_dataset(folder)
    except EXPECTED_ERRORS as error:
        notify(PAGE, "error", f"The dataset was not created: {error}")
        return
    st.session_state["make_name"] = st.session_state["make_classes"] = ""
    notify(PAGE, "success", f"Created {folder}; it is the active dataset now. Add classes and pictures.")


def add_class(dataset: Path) -> None:
    name = st.session_state.get("make_new_class", "")
    try:
        folder = editing.add_class(dataset, name)
    except EXPECTED_ERRORS as error:
        notify(PAGE, "error", f"The class was not added: {error}")
        return
    st.session_state["make_new_class"] = ""
    st.session_state[TARGET] = folder.name
    notify(PAGE, "success", f"Added the class {folder.name}.")


def rename_class(dataset: Path) -> None:
    old = st.session_state["make_rename_from"]
    try:
        folder = editing.rename_class(dataset, old, st.session_state.get("make_renamed", ""))
    except EXPECTED_ERRORS as error:
        notify(PAGE, "error", f"The class was not renamed: {error}")
        return
    st.session_state["make_renamed"] = ""
    st.session_state[TARGET] = folder.name
    notify(PAGE, "success", f"Renamed the class {old} to {folder.name}.")


def add_uploads(dataset: Path, key: str) -> None:
    files, class_name = st.session_state.get(key) or [], st.session_state[TARGET]
    try:
        result = editing.add_pictures(dataset, class_name, [(file.name, file.getvalue()) for file in files])
    except EXPECTED_ERRORS as error:
        notify(ADD, "error", f"Nothing was added: {error}")
        return
    bump(UPLOADS)
    skipped = "; ".join(f"{name}: {reason}" for name, reason in result.skipped)
    text = f"Added {plural(len(result.added), 'picture')} to {class_name}."
    notify(ADD, "warning" if skipped else "success", f"{text} Left out: {skipped}" if skipped else text)


def add_frames(dataset: Path, frames: list[bytes]) -> None:
    """Save webcam pictures (one, or a burst's) into the chosen class, as one undoable edit."""
    if not frames:
        return
    class_name = st.session_state[TARGET]
    try:
        added = editing.add_camera_pictures(dataset, class_name, frames)
    except EXPECTED_ERRORS as error:
        notify(ADD, "error", f"The camera pictures were not saved: {error}")
        return
    notify(ADD, "success", f"Added {plural(len(added), 'camera picture')} to {class_name}.")


def add_photo(dataset: Path, key: str) -> None:
    """Save the picture just taken and ready a fresh camera (a new key). A photo the browser sends again to
    that new camera (its file id is the one saved) is not saved twice."""
    photo = st.session_state.get(key)
    if photo is None or photo.file_id == st.session_state.get(LAST_PHOTO):
        return
    st.session_state[LAST_PHOTO] = photo.file_id
    add_frames(dataset, [photo.getvalue()])
    bump(CAMERA)


def new_dataset_form(expanded: bool) -> None:
    with st.expander("Start a new dataset", expanded=expanded, icon=":material/create_new_folder:"):
        st.text_input("Name", key="make_name", placeholder="my-simpsons")
        st.text_input(
            "Classes (optional, separated by commas)",
            key="make_classes",
            placeholder="bart_simpson, homer_simpson",
        )
        st.button("Create the dataset", on_click=create, type="primary", icon=":material/add:")
        st.caption(f"Made in {editing.datasets_home()}, one folder per class; it becomes the active dataset.")


def class_controls(dataset: Path, classes: list[str]) -> None:
    """Add a class; rename one."""
    add_column, rename_column = st.columns(2, gap="large")
    with add_column:
        st.text_input("New class", key="make_new_class", placeholder="lisa_simpson")
        st.button("Add the class", on_click=add_class, args=(dataset,), icon=":material/add:")
    if not classes:
        return
    with rename_column:
        st.selectbox("Rename a class", classes, key="make_rename_from")
        st.text_input("New name", key="make_renamed")
        st.button("Rename", on_click=rename_class, args=(dataset,), icon=":material/edit:")


def add_pictures(dataset: Path, pictures: dict[str, list[Path]]) -> None:
    """The class to fill, then one of its sources: files, a picture per click, a burst. Only the chosen source
    is drawn, so the camera is on only while a webcam source is chosen. (The callbacks read the class from the
    session state: the latest choice, even when it came with the click.)"""
    classes = list(pictures)
    if st.session_state.get(TARGET) not in classes:
        st.session_state[TARGET] = classes[0]
    target_column, source_column = st.columns([1, 2], vertical_alignment="bottom")
    class_name = target_column.selectbox("Add pictures to", classes, key=TARGET)
    source = source_column.segmented_control(
        "From", SOURCES, default=SOURCES[0], required=True, key="make_source"
    )
    if source == SOURCES[0]:
        upload_files(dataset, class_name)
        return
    resolution = st.selectbox(
        "Camera resolution",
        list(RESOLUTIONS),
        index=list(RESOLUTIONS).index(DEFAULT_RESOLUTION),
        key="make_resolution",
        help="The size the webcam is asked for (a phone's front camera may give less).",
    )
    if source == SOURCES[1]:
        key = f"{CAMERA}_{st.session_state.get(CAMERA, 0)}"
        st.camera_input(
            f"Take a picture for {class_name}",
            key=key,
            resolution=resolution,
            on_change=add_photo,
            args=(dataset, key),
        )
        return
    count_column, interval_column = st.columns(2)
    count = count_column.number_input("Pictures", 1, 60, 10, key="make_burst_count")
    interval = interval_column.slider("Seconds between pictures", 0.1, 2.0, 0.3, 0.1, key="make_gap")
    burst_camera(
        BurstSettings(int(count), float(interval), resolution),
        key="make_burst",
        on_pictures=lambda frames: add_frames(dataset, frames),
        message=f"Into {class_name}: {plural(len(pictures[class_name]), 'picture')} so far.",
    )


def upload_files(dataset: Path, class_name: str) -> None:
    key = f"{UPLOADS}_{st.session_state.get(UPLOADS, 0)}"
    files = st.file_uploader(
        "Pictures, or a .zip of pictures (all go into this class)",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=key,
    )
    st.button(
        f"Add {plural(len(files), 'file') if files else 'them'} to {class_name}",
        disabled=not files,
        on_click=add_uploads,
        args=(dataset, key),
        icon=":material/upload:",
        key="make_add_uploads",
    )


def overview(pictures: dict[str, list[Path]]) -> None:
    """Each class with its count and newest pictures, so it can be watched filling up."""
    for name, files in pictures.items():
        st.markdown(f"**{name}** · {plural(len(files), 'picture')}")
        if not files:
            st.caption("Empty so far.")
            continue
        for column, path in grid_cells(files[:NEWEST_SHOWN], OVERVIEW_COLUMNS):
            with column:
                thumbnail(path, side=THUMBNAIL_SIDE)


def fix_class(dataset: Path, pictures: dict[str, list[Path]]) -> None:
    """One class's pictures a page at a time, each with a checkbox; move or remove the chosen ones."""
    name = st.selectbox("Class", list(pictures), key="make_fix_class")
    files = pictures[name]
    if not files:
        st.info(f"{name} has no pictures.")
        edit_panel(dataset, list(pictures), FIX, offered=False)  # Undo what emptied it
        return
    pages = (len(files) + GRID_PAGE - 1) // GRID_PAGE
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="make_fix_page") if pages > 1 else 1
    shown = files[(page - 1) * GRID_PAGE : page * GRID_PAGE]
    for column, path in grid_cells(shown, GRID_COLUMNS):
        with column:
            thumbnail(path, side=THUMBNAIL_SIDE)
            picture_box(path, FIX)
    edit_panel(dataset, list(pictures), FIX)


st.title("Make a dataset")
active = active_dataset()
new_dataset_form(expanded=active.is_demo)
edit_notice(PAGE)
if active.source == "environment":
    st.info(f"The {settings.DATA_ENV} environment variable chooses the dataset; unset it to use a new one.")
st.caption(f"Working on: {active.describe()}")
dataset = active.path
if not dataset.is_dir():
    st.error(f"{dataset} is not a folder any more: start a new dataset above, or choose one on Home.")
    st.stop()

pictures = class_pictures(dataset)  # after the callbacks: what they changed is counted
add_tab, fix_tab = st.tabs(["Add classes and pictures", "Check and fix a class"])
with add_tab:
    editable = may_edit(dataset, ADD)
    if editable:
        with st.expander("Add or rename a class", expanded=not pictures, icon=":material/category:"):
            class_controls(dataset, list(pictures))
    if not pictures:
        st.info("No classes yet: add one above (a class is a folder of pictures of one thing).")
    else:
        sources, classes = st.columns([3, 2], gap="large")  # the classes fill up beside the camera
        if editable:
            with sources:
                edit_notice(ADD)
                add_pictures(dataset, pictures)
                undo_and_trash(dataset, ADD)
        with classes:
            overview(pictures)
with fix_tab:
    if pictures:
        fix_class(dataset, pictures)
    else:
        st.info("Add classes and pictures first.")
