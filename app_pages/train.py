"""Train: the settings of a `TrainConfig` with a time estimate, a live view of the running run (progress with
each phase, and learning curves, refreshed once a second by a fragment reading the run folder), and the
history of runs with their curves overlaid, renamed or moved to the trash.

Training runs in its own process (`runs.start_run`), so closing or refreshing the tab never stops it: the page
finds the running run again through `runs.list_runs`. While one runs, the history refreshes too (its own
fragment, polling only then), so its duration, epochs and comparison follow the run.

The settings are plain widgets, not an `st.form`: the held-out share hides while validating on the test split
and the time estimate follows every value, both of which need a rerun on each change.
"""

from __future__ import annotations

import streamlit as st

from app_pages.shared import EXPECTED_ERRORS, active_dataset, data_change_note, dataset_layout, run_label
from simpsons_core import paths, settings
from simpsons_core.charts import learning_curves_figure, runs_overlay_figure
from simpsons_core.config import (
    BALANCED_WEIGHTS_ABOVE,
    CLASS_WEIGHTS,
    DEFAULT_RECIPE,
    PRECISIONS,
    RECIPE_NOTES,
    RECIPES,
    TrainConfig,
    recipe,
)
from simpsons_core.run.folder import RunInfo
from simpsons_core.run.launcher import cancel_run, start_run
from simpsons_core.run.lock import RunBusyError, lock_holder
from simpsons_core.run.lookup import list_runs, read_run, trained_on
from simpsons_core.run.manage import delete_run, rename_run
from simpsons_core.run.summary import (
    calibration_line,
    estimate_seconds,
    history_rows,
    honest_accuracy,
    progress_text,
)
from simpsons_core.training.models import MODELS

WATCHED = "watched_run"
# Whether a run trains, as the live panel last saw it: the history polls only then. The page sets
# `PAGE_RUN` before the live panel, so the panel can tell a full run from its own once-a-second reruns.
RUN_TRAINING = "run_training"
PAGE_RUN = "page_run"
HISTORY_REFRESH_SECONDS = 2.0
COMPARE = "compare_runs"
COMPARE_KNOWN = "compare_known"  # the runs the comparison offered last time, to add new ones to the choice
COMPARE_DEFAULT = 3
MANAGE_RUN = "manage_run"
MANAGE_NAME = "manage_name"
MANAGE_MESSAGE = "manage_message"
OVERLAY_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
VALIDATION_LABELS = {
    "split": "a held-out part of the training folder, near-duplicates kept together (leak-free)",
    "test": "the dataset's test split (may overlap training)",
}
AUGMENT_PAGE_BUTTON = "*Use these settings for training*"
# Widths in pixels that fit the texts history_rows writes; state and duration come right after the run, so a
# narrow window shows them without scrolling sideways.
HISTORY_COLUMNS = {
    "run": st.column_config.TextColumn("run", width=215),
    "state": st.column_config.TextColumn("state", width=85),
    "duration": st.column_config.TextColumn(
        "duration", width=95, help="Start to finish (to now while running)."
    ),
    "started": st.column_config.TextColumn("started", width=125),
    "model": st.column_config.TextColumn("model", width=95),
    "epochs": st.column_config.TextColumn("epochs", width=65, help="Finished of planned."),
    "validation": st.column_config.TextColumn("validation", width=110),
    "best val accuracy": st.column_config.TextColumn("best val", width=75, help="Best validation accuracy."),
    "test accuracy": st.column_config.TextColumn(
        "test split",
        width=240,
        help="The best model's accuracy on the dataset's test split, with how many of its images are "
        "near-duplicates of training images: those measure memory, not recognition, so with many of them the "
        "figure flatters the model.",
    ),
}


def recipe_choice() -> TrainConfig:
    """The recipe picker: short names on the buttons, the chosen one's note below (whole, never clipped)."""
    name = st.segmented_control(
        "Recipe",
        list(RECIPES),
        default=DEFAULT_RECIPE,
        required=True,
        key="train_recipe",
        persist_state="session",  # the Augmentation page starts from the recipe picked here
        help="\n".join(f"- **{name}**: {note}" for name, note in RECIPE_NOTES.items()),
    )
    st.caption(f"**{name}**: {RECIPE_NOTES[name]}.")
    return recipe(name)


def config_form(
    layout_has_test: bool, data_dir: str, folder_images: int, history: list[RunInfo]
) -> TrainConfig | None:
    """The settings, Start, and under Start the time an earlier run of the same model and image size says
    this one takes; returns the config when Start was pressed and the values make a valid config."""
    base = recipe_choice()
    stored = settings.training_augment()
    key = f"train_{base.recipe}_"
    with st.container(border=True, key="train_form"):
        model = st.selectbox("Model", list(MODELS), index=list(MODELS).index(base.model), key=key + "model")
        left, right = st.columns(2)
        epochs = left.number_input("Epochs", 1, 500, base.epochs, key=key + "epochs")
        batch_size = right.number_input("Batch size", 1, 1024, base.batch_size, key=key + "batch")
        image_size = left.number_input(
            "Image size (pixels)", 16, 512, base.image_size, step=16, key=key + "size"
        )
        learning_rate = right.number_input(
            "Learning rate", 1e-6, 1.0, base.learning_rate, format="%.5f", step=1e-4, key=key + "lr"
        )
        sources = list(VALIDATION_LABELS) if layout_has_test else ["split"]
        validation = st.radio(
            "Validate on",
            sources,
            index=sources.index(base.validation) if base.validation in sources else 0,
            format_func=VALIDATION_LABELS.get,
            key=key + "validation",
        )
        left, right = st.columns(2)
        fraction = base.validation_fraction
        if validation == "split":  # the test split is used whole
            fraction = left.slider("Held-out share", 0.05, 0.5, fraction, 0.05, key=key + "fraction")
        seed = right.number_input("Seed", 0, 2**31 - 1, base.seed, key=key + "seed")
        patience = left.number_input(
            "Early stopping patience (0: never)", 0, 100, base.early_stopping_patience, key=key + "patience"
        )
        left, right = st.columns(2)
        class_weights = left.selectbox(
            "Class weights",
            CLASS_WEIGHTS,
            index=CLASS_WEIGHTS.index(base.class_weights),
            key=key + "class_weights",
            help="**balanced**: each image's loss is weighted by the inverse of its class's share of the "
            "training images, so a small class counts as much as a large one (the Dataset page suggests it "
            f"above an imbalance of {BALANCED_WEIGHTS_ABOVE}). **none**: every image alike.",
        )
        precision = right.selectbox(
            "Precision",
            PRECISIONS,
            index=PRECISIONS.index(base.precision),
            key=key + "precision",
            help="**auto**: on a CPU with AMX or AVX512-BF16 (or a GPU with bfloat16), a short probe times "
            "this model, image size and batch in both precisions and picks bfloat16 only if it is clearly "
            "faster (measured once per CPU kind, then cached); float32 elsewhere. **bfloat16**: mixed "
            "precision always (slow without hardware support). Saved models are float32 either way.",
        )
        use_stored = st.toggle(
            "Augmentation from the Augmentation page",
            value=stored is not None and base.recipe != "tutorial",  # the tutorial recipe stays exact
            disabled=stored is None,
            key=key + "augment",
            help="Off: the recipe's own augmentation (the tutorial recipe starts off, to stay exact).",
        )
        if stored is None:
            st.caption(
                f"Off: no augmentation chosen yet. Press {AUGMENT_PAGE_BUTTON} on the Augmentation page to "
                "train with your own."
            )
        config: TrainConfig | None = None
        problem: str | None = None
        try:
            config = base.replace(
                data_dir=data_dir,
                model=model,
                epochs=int(epochs),
                batch_size=int(batch_size),
                image_size=int(image_size),
                learning_rate=float(learning_rate),
                validation=validation,
                validation_fraction=float(fraction),
                seed=int(seed),
                early_stopping_patience=int(patience),
                class_weights=class_weights,
                precision=precision,
                augment=stored if use_stored and stored is not None else base.augment,
            )
        except ValueError as error:
            problem = str(error)
        submitted = st.button("Start training", type="primary", icon=":material/play_arrow:")
        if config and (estimate := estimate_seconds(config, folder_images, history)):
            st.caption(f"Should take {estimate.line()}.")
    if not submitted:
        return None
    if problem:
        st.error(f"These settings cannot be used: {problem}")
    return config


def start(config: TrainConfig) -> None:
    try:
        # start_run first checks every class has readable images: instant once scanned, seconds at first.
        with st.spinner("Checking the images..."):
            st.session_state[WATCHED] = start_run(config)
    except RunBusyError as error:
        st.warning(f"Not started: {error}")
    except EXPECTED_ERRORS as error:
        st.error(f"Training could not start: {error}")


def watched_run() -> RunInfo | None:
    """The run training now (whoever started it), else the run this tab watched last. Cheap enough to call
    every second: the lock file names the running run, so only that one run folder is read."""
    holder = lock_holder()
    if holder and holder.get("run_id"):
        st.session_state[WATCHED] = holder["run_id"]
    run_id = st.session_state.get(WATCHED)
    return read_run(run_id) if run_id else None


def request_cancel(run_id: str) -> None:
    try:
        cancel_run(run_id)
    except EXPECTED_ERRORS as error:
        st.session_state.cancel_problem = str(error)


def live_panel() -> None:
    info = watched_run()
    # A run that started or ended since the last look changes what the history shows and whether it polls:
    # the whole page reruns (unless this is the page's own run, which is about to draw the history anyway).
    training = info is not None and info.state == "running"
    page_run = st.session_state.pop(PAGE_RUN, False)
    if training != st.session_state.get(RUN_TRAINING, False):
        st.session_state[RUN_TRAINING] = training
        if not page_run:
            st.rerun()
    if info is None:
        st.info("No run is training. Set the options and press Start training.")
        return
    if not info.path.is_dir():
        st.warning(f"Run {info.id} was deleted while shown here.")
        return
    st.markdown(f"**{run_label(info)}**")
    if info.validation == "test":
        st.caption(
            "Validated on the dataset's test split, which may overlap training: the Dataset page counts its "
            "near-duplicates of training images."
        )
    if problem := st.session_state.pop("cancel_problem", None):
        st.warning(f"Cancel failed: {problem}")
    fraction, text = progress_text(info)
    if info.state == "running":
        st.progress(fraction, text=text)
        st.button("Cancel", on_click=request_cancel, args=(info.id,), icon=":material/stop:")
    elif info.state == "completed":
        st.success(f"Completed. {text}")
        st.caption(f"Accuracy: {honest_accuracy(info).line('best validation accuracy')}.")
        if calibration := calibration_line(info.calibration):
            st.caption(calibration)
    elif info.state == "cancelled":
        st.info(f"Cancelled. {text}")
    else:
        st.error(f"{info.state.capitalize()}: {info.error or '; '.join(info.problems) or 'no details'}")
    st.plotly_chart(learning_curves_figure(info), key="live_curves")


def history_panel() -> None:
    """Every run as a table row, and the chosen runs' curves overlaid. Re-reads the runs on each call, so
    polled while a run trains it keeps that run's row and its place in the comparison current."""
    history = list_runs()
    if not history:
        st.write("No runs yet.")
        return
    st.dataframe(history_rows(history), hide_index=True, width="stretch", column_config=HISTORY_COLUMNS)
    finished = {info.id: info for info in reversed(history) if info.epochs}  # newest first
    if not finished:
        st.caption("Runs can be compared here once they have finished an epoch.")
        return
    choose_compared(list(finished))
    chosen = st.multiselect("Compare runs", list(finished), key=COMPARE)
    metric = st.segmented_control("Curve", OVERLAY_METRICS, default="val_accuracy", key="compare_metric")
    if chosen:
        st.plotly_chart(
            runs_overlay_figure([finished[i] for i in chosen], metric or "val_accuracy"), key="overlay"
        )


def choose_compared(options: list[str]) -> None:
    """Set the comparison's choice before its widget is drawn (one key, so the choice survives every poll):
    the user's picks that still exist, plus runs that newly finished an epoch; at first the newest few."""
    known = st.session_state.get(COMPARE_KNOWN)
    if known is None:
        chosen = options[:COMPARE_DEFAULT]
    else:
        kept = [run_id for run_id in st.session_state.get(COMPARE, []) if run_id in options]
        chosen = [run_id for run_id in options if run_id not in known] + kept
    st.session_state[COMPARE] = chosen
    st.session_state[COMPARE_KNOWN] = options


def rename(run_id: str) -> None:
    name = st.session_state.get(MANAGE_NAME, "")
    try:
        new_id = rename_run(run_id, name)
    except EXPECTED_ERRORS as error:
        st.session_state[MANAGE_MESSAGE] = ("error", f"Not renamed: {error}")
        return
    if st.session_state.get(WATCHED) == run_id:
        st.session_state[WATCHED] = new_id
    st.session_state[MANAGE_RUN] = new_id
    st.session_state[MANAGE_NAME] = ""
    st.session_state[MANAGE_MESSAGE] = ("success", f"Renamed {run_id} to {new_id}.")


def delete(run_id: str) -> None:
    try:
        where = delete_run(run_id)
    except EXPECTED_ERRORS as error:
        st.session_state[MANAGE_MESSAGE] = ("error", f"Not deleted: {error}")
        return
    if st.session_state.get(WATCHED) == run_id:
        del st.session_state[WATCHED]
    st.session_state.pop(MANAGE_RUN, None)
    st.session_state[MANAGE_MESSAGE] = ("success", f"Moved {run_id} to the trash: {where}")


def manage_runs(history: list[RunInfo]) -> None:
    """Rename a run, or move it to the workspace's trash after a confirmation. A training run is left out:
    its process writes into the folder by path."""
    if message := st.session_state.pop(MANAGE_MESSAGE, None):
        kind, text = message
        (st.success if kind == "success" else st.error)(text)
    idle = [info.id for info in reversed(history) if info.state != "running"]
    if not idle:
        return
    with st.expander("Rename or delete a run"):
        if st.session_state.get(MANAGE_RUN) not in idle:
            st.session_state.pop(MANAGE_RUN, None)
        run_id = st.selectbox("Run", idle, key=MANAGE_RUN)
        name_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
        name_column.text_input(
            "New name",
            key=MANAGE_NAME,
            placeholder="e.g. lite0 at 128 px",
            help="The start time stays in front.",
        )
        button_column.button("Rename", on_click=rename, args=(run_id,), icon=":material/edit:")
        trash = paths.trash_dir() / "runs"
        confirmed = st.checkbox(
            f"Move {run_id} to the trash folder",
            key=f"manage_confirm_{run_id}",
            help=f"The trash folder: {trash}",
        )
        st.button(
            "Delete run", on_click=delete, args=(run_id,), disabled=not confirmed, icon=":material/delete:"
        )
        st.caption(
            f"Delete moves the run folder to the trash folder ({trash}); move it back to restore the run."
        )


st.title("Train")
active = active_dataset()
st.caption(f"Dataset: {active.describe()}")
layout = dataset_layout()
runs = list_runs()
if latest := next((i for i in reversed(runs) if i.state == "completed" and trained_on(i, active.path)), None):
    data_change_note(latest, name_run=True)  # the next run would learn from different data

form_column, live_column = st.columns([2, 3], gap="large")
with form_column:
    config = config_form(
        bool(layout and layout.test), str(active.path), len(layout.train) if layout else 0, runs
    )
    if config is not None:
        if layout is None or len(layout.classes) < 2:
            st.error("Training needs a dataset with at least two classes; choose one on the Home page.")
        else:
            start(config)

with live_column:
    # Always polling, so the fragment keeps one identity (a second tab's run shows up here too).
    st.session_state[PAGE_RUN] = True
    st.fragment(live_panel, run_every=1.0)()

st.subheader("Run history")
polling = st.session_state.get(RUN_TRAINING, False)
st.fragment(history_panel, run_every=HISTORY_REFRESH_SECONDS if polling else None)()
manage_runs(runs)
