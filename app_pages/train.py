"""Train: a form over `TrainConfig`, a live view of the running run (progress and learning curves, refreshed
once a second by a fragment reading the run folder), and the history of runs with their curves overlaid.

Training runs in its own process (`runs.start_run`), so closing or refreshing the tab never stops it: the page
finds the running run again through `runs.list_runs`.
"""

from __future__ import annotations

import streamlit as st

from app_pages.shared import EXPECTED_ERRORS, active_dataset, dataset_layout, run_label
from simpsons_core import settings
from simpsons_core.charts import learning_curves_figure, runs_overlay_figure
from simpsons_core.config import DEFAULT_RECIPE, RECIPE_NOTES, RECIPES, TrainConfig, recipe
from simpsons_core.runs.folder import RunInfo
from simpsons_core.runs.launcher import cancel_run, start_run
from simpsons_core.runs.lock import RunBusyError, lock_holder
from simpsons_core.runs.lookup import list_runs, read_run
from simpsons_core.runs.summary import calibration_line, history_rows, honest_accuracy, progress_text
from simpsons_core.training.models import MODELS

WATCHED = "watched_run"
OVERLAY_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
VALIDATION_LABELS = {
    "split": "a held-out part of the training folder, near-duplicates kept together (leak-free)",
    "test": "the dataset's test split (may overlap training)",
}


def config_form(layout_has_test: bool, data_dir: str) -> TrainConfig | None:
    """The form; returns the config when Start was pressed and the values make a valid config."""
    name = st.segmented_control(
        "Recipe",
        list(RECIPES),
        default=DEFAULT_RECIPE,
        format_func=lambda name: f"{name} ({RECIPE_NOTES[name]})",
        key="train_recipe",
    )
    base = recipe(name or DEFAULT_RECIPE)
    stored = settings.training_augment()
    key = f"train_{base.recipe}_"
    with st.form("train_form", border=True):
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
        fraction = left.slider(
            "Held-out share", 0.05, 0.5, base.validation_fraction, 0.05, key=key + "fraction"
        )
        seed = right.number_input("Seed", 0, 2**31 - 1, base.seed, key=key + "seed")
        patience = left.number_input(
            "Early stopping patience (0: never)", 0, 100, base.early_stopping_patience, key=key + "patience"
        )
        use_stored = right.toggle(
            "Augmentation from the Augmentation page",
            value=stored is not None and base.recipe != "tutorial",  # the tutorial recipe stays exact
            disabled=stored is None,
            key=key + "augment",
            help="Off: the recipe's own augmentation (the tutorial recipe starts off, to stay exact).",
        )
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return None
    try:
        return base.replace(
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
            augment=stored if use_stored and stored is not None else base.augment,
        )
    except ValueError as error:
        st.error(f"These settings cannot be used: {error}")
        return None


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
    if info.state != "running" and st.session_state.pop("was_running", False):
        st.rerun()  # the whole page, so the history gains the finished run
    st.session_state.was_running = info.state == "running"


st.title("Train")
active = active_dataset()
st.caption(f"Dataset: {active.describe()}")
layout = dataset_layout()

form_column, live_column = st.columns([2, 3], gap="large")
with form_column:
    config = config_form(bool(layout and layout.test), str(active.path))
    if config is not None:
        if layout is None or len(layout.classes) < 2:
            st.error("Training needs a dataset with at least two classes; choose one on the Home page.")
        else:
            start(config)

with live_column:
    # Always polling, so the fragment keeps one identity (a second tab's run shows up here too).
    st.fragment(live_panel, run_every=1.0)()

st.subheader("Run history")
history = list_runs()
if not history:
    st.write("No runs yet.")
else:
    st.dataframe(history_rows(history), hide_index=True, width="stretch")
    finished = [info for info in reversed(history) if info.epochs]
    by_id = {info.id: info for info in finished}
    # Keyed by the newest finished run, so a run that just finished joins the default selection.
    newest = next(iter(by_id), "none")
    chosen = st.multiselect("Compare runs", list(by_id), default=list(by_id)[:3], key=f"compare_{newest}")
    metric = st.segmented_control("Curve", OVERLAY_METRICS, default="val_accuracy", key="compare_metric")
    if chosen:
        st.plotly_chart(
            runs_overlay_figure([by_id[i] for i in chosen], metric or "val_accuracy"), key="overlay"
        )
