"""What several pages need: the active dataset, picking a run, and turning expected failures into messages.

Anything computed about data or runs lives in `simpsons_core`; this module only decides how it is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app_pages.catalogue import HOME, TRAIN
from simpsons_core import settings
from simpsons_core.data import editing, images
from simpsons_core.data.editing import data_changed_since
from simpsons_core.data.folders import IGNORED_NAMES, DatasetLayout, detect_layout
from simpsons_core.data.images import ImageError, open_rgb
from simpsons_core.errors import EXPECTED_ERRORS
from simpsons_core.run.folder import RunInfo
from simpsons_core.run.lookup import list_runs
from simpsons_core.run.summary import run_label

T = TypeVar("T")


@contextmanager
def reported(action: str) -> Iterator[None]:
    """Show an expected failure inside the block as one st.error naming `action`; the page goes on."""
    try:
        yield
    except EXPECTED_ERRORS as error:
        st.error(f"{action}: {error}")


def thumbnail(path: str | Path, caption: str = "", side: int = 256, width: int | str = "stretch") -> None:
    """A picture letterboxed into a `side` square, so a grid of any shapes lines up; or its caption with why
    it cannot be shown."""
    try:
        image = open_rgb(Path(path), draft_size=side)
    except ImageError as error:
        st.caption(f"{caption} ({error})" if caption else str(error))
        return
    st.image(images.letterboxed(image, side), caption=caption or None, width=width)


def grid_cells(items: Sequence[T], columns: int) -> Iterator[tuple[DeltaGenerator, T]]:
    """Each item with the column of its cell in a grid `columns` wide, drawn row by row."""
    for start in range(0, len(items), columns):
        yield from zip(st.columns(columns), items[start : start + columns], strict=False)


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


def class_pictures(dataset: Path) -> dict[str, list[Path]]:
    """Each class folder of the dataset's training side, empty ones included, with its pictures, newest
    first (what a class being filled shows)."""
    try:
        layout = detect_layout(dataset)
    except ValueError:  # no picture yet: a new dataset, its class folders empty
        folder, items = dataset, []
    else:
        folder, items = layout.train_dir, layout.train
    found: dict[str, list[Path]] = {
        sub.name: [] for sub in sorted(folder.iterdir()) if sub.is_dir() and _visible(sub.name)
    }
    for item in items:
        found.setdefault(item.label, []).append(item.path)
    return {name: sorted(files, key=_modified, reverse=True) for name, files in sorted(found.items())}


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in IGNORED_NAMES


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # gone since the listing
        return 0.0


def completed_runs() -> list[RunInfo]:
    """Runs with a usable model, newest first."""
    return [info for info in reversed(list_runs()) if info.state == "completed" and info.model_path]


def data_change_note(run: RunInfo, name_run: bool = False) -> None:
    """Say so when the run's dataset changed after it trained (pictures added, moved or removed since)."""
    if changed := data_changed_since(run):
        st.info(f"{run_label(run)}: {changed}" if name_run else changed, icon=":material/difference:")


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


# Fixing the data where it is seen: a page draws `picture_box` under each picture it offers, then
# `edit_panel`; what an edit did (or why it failed) shows in the panel, with "Undo: <what>" and the trash.
PICKED = "_pick:"  # session-state keys of the picture checkboxes: "<panel>_pick:<path>"


def picture_box(path: str | Path, panel: str, label: str = "") -> None:
    """A checkbox under a picture choosing it for `panel`'s edits; keyed by path, so a choice follows its
    picture when the grid changes (labelled by file name unless `label` says otherwise)."""
    st.checkbox(label or Path(path).name, key=f"{panel}{PICKED}{path}")


def picked(panel: str) -> list[Path]:
    """The pictures chosen with `picture_box` in `panel`."""
    prefix = f"{panel}{PICKED}"
    keys = [str(key) for key, on in st.session_state.items() if str(key).startswith(prefix) and on]
    return [Path(key[len(prefix) :]) for key in keys]


def _edit(panel: str, action: Callable[[], str], reset: Sequence[str] = ()) -> None:
    """A button's callback: run `action` (before the page redraws, so the grid shows its result; it reads the
    choices from the session state, which has the latest even when a click came with other changes) and keep
    the sentence it returns, or why it failed, for `edit_notice`; clears the choices made, and `reset`."""
    try:
        done = action()
    except EXPECTED_ERRORS as error:
        notify(panel, "error", str(error))
        return
    for key in [key for key in st.session_state if str(key).startswith(f"{panel}{PICKED}") or key in reset]:
        del st.session_state[key]
    notify(panel, "success", done)


def notify(panel: str, kind: str, text: str) -> None:
    """Keep a message for the panel's `edit_notice` ("success", "warning" or "error"), typically from a
    callback, before the page draws it."""
    st.session_state[f"{panel}_notice"] = (kind, text)


def edit_notice(panel: str) -> None:
    """What the panel's last action did. Its slot is drawn even when empty, so a notice coming or going
    does not move what follows (a camera below stays on)."""
    slot = st.container()
    if notice := st.session_state.pop(f"{panel}_notice", None):
        kind, text = notice
        getattr(slot, kind)(text)


def may_edit(dataset: Path, panel: str) -> bool:
    """Whether the app may change `dataset`. For a folder of the user's (outside the workspace) a checkbox
    asks, once per folder, saying that files are moved, never deleted."""
    if not editing.needs_consent(dataset):
        return True
    st.checkbox(
        f"Let Simpsons Studio change {dataset}: pictures will be moved between its class folders or to the "
        f"trash ({editing.trash_folder(dataset)}), never deleted; every change can be undone. Asked once.",
        key=f"{panel}_consent",
        on_change=editing.grant_consent,
        args=(dataset,),
    )
    return False


def edit_panel(dataset: Path, classes: Sequence[str], panel: str, offered: bool = True) -> None:
    """Move the pictures chosen with `picture_box` to a class, or remove them to the trash (when pictures
    are `offered`); then what the last edit did, Undo and the trash, also once nothing is left to choose.
    `dataset` is the folder the pictures belong to."""
    edit_notice(panel)
    if offered and may_edit(dataset, panel):
        chosen = picked(panel)
        count = f"{len(chosen)} selected" if chosen else "none selected"
        target, move, remove = st.columns([2, 1, 1], vertical_alignment="bottom")
        to_class = target.selectbox("Move to class", classes, key=f"{panel}_target")  # read again on a click
        move.button(
            f"Move ({count})",
            key=f"{panel}_move",
            disabled=not chosen or to_class is None,
            icon=":material/drive_file_move:",
            on_click=_edit,
            args=(panel, lambda: editing.move_pictures(dataset, picked(panel), target_of(panel)).describe()),
        )
        remove.button(
            f"Remove ({count})",
            key=f"{panel}_remove",
            disabled=not chosen,
            icon=":material/delete:",
            help="Moves them to the dataset's trash; Undo brings them back.",
            on_click=_edit,
            args=(panel, lambda: editing.remove_pictures(dataset, picked(panel)).describe()),
        )
    undo_and_trash(dataset, panel)


def target_of(panel: str) -> str:
    return st.session_state[f"{panel}_target"]


def undo_and_trash(dataset: Path, panel: str) -> None:
    """An "Undo: <what>" button for the latest edit not undone yet, and the trash's size with *Empty trash*
    behind a confirmation (the only deletion the app makes, of the trash only)."""
    latest = editing.next_undo(dataset)
    if latest is not None:
        st.button(
            f"Undo: {latest.describe()}",
            key=f"{panel}_undo",
            icon=":material/undo:",
            on_click=_edit,
            args=(panel, lambda: _undone(dataset)),
        )
    files, size = editing.trash_size(dataset)
    if not files:
        return
    with st.expander(f"Trash: {plural(files, 'file')}, {size / 1e6:.1f} MB"):
        expiring = len(editing.expiring_edits(dataset))
        st.caption(
            f"Removed pictures wait in {editing.trash_folder(dataset)}. Emptying the trash deletes them for "
            "good" + (f", and {plural(expiring, 'edit')} can then no longer be undone." if expiring else ".")
        )
        sure = st.checkbox("Delete the files in the trash for good", key=f"{panel}_empty_sure")
        st.button(
            "Empty trash",
            key=f"{panel}_empty",
            disabled=not sure,
            icon=":material/delete_forever:",
            on_click=_edit,
            args=(
                panel,
                lambda: f"Deleted {plural(editing.empty_trash(dataset), 'file')} from the trash.",
                (f"{panel}_empty_sure",),
            ),
        )


def _undone(dataset: Path) -> str:
    edit = editing.undo(dataset)  # None when another tab undid it first
    return f"Undone: {edit.describe()}." if edit else "Nothing left to undo."


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
