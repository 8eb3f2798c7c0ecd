"""Evaluate: a completed run on a split: accuracy, how far its answers can be trusted (balanced accuracy,
calibration error, confident errors, the reliability diagram and the coverage curve), the confusion matrix,
per-class figures and the mistakes, most confidently wrong first; then the Export panel. Results are saved in
the run folder, so they show again without recomputing. A run's validation images, which training measured
anyway, are evaluated once on opening rather than greeting the user with "Not evaluated yet"."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages.export_panel import export_panel
from app_pages.shared import (
    EXPECTED_ERRORS,
    active_dataset,
    data_change_note,
    edit_panel,
    grid_cells,
    pick_completed_run,
    picture_box,
    plural,
    thumbnail,
)
from simpsons_core.charts import confusion_figure, coverage_figure, reliability_figure
from simpsons_core.inference.evaluate import (
    SPLITS,
    Evaluation,
    evaluate,
    folder_split,
    most_confident_first,
    read_evaluation,
)
from simpsons_core.run.lookup import trained_on

MISTAKES_SHOWN = 24
GALLERY_COLUMNS = 6
# Every mistake is shown in a square of this side, the picture shrunk to fit (never enlarged) and centred, so
# the gallery is a regular grid whatever the images' shapes.
THUMBNAIL_SIDE = 160
# The split evaluated on opening when it has no saved evaluation: training measured it already.
AUTO_SPLIT = "validation"
MISTAKES_PANEL = "evaluate_mistakes"
SPLIT_LABELS = {
    "validation": "the run's validation images",
    "test": "the dataset's test split",
    "active": "the active dataset (another folder)",
}


def run_evaluation(run_path: Path, split: str, data_dir: Path | None) -> Evaluation | None:
    bar = st.progress(0.0, text="Decoding images...")
    try:
        return evaluate(
            run_path,
            split="test" if split == "active" else split,
            data_dir=data_dir,
            progress=lambda done, total: bar.progress(
                done / max(total, 1), text=f"Decoding {done}/{total}..."
            ),
        )
    except EXPECTED_ERRORS as error:
        st.error(f"The evaluation failed: {error}")
        return None
    finally:
        bar.empty()


def show(evaluation: Evaluation, dataset: Path | None) -> None:
    trust = evaluation.trust
    accuracy, balanced, calibration, images, mistakes = st.columns(5)
    accuracy.metric("accuracy", f"{evaluation.accuracy:.1%}")
    balanced.metric(
        "balanced accuracy",
        f"{trust.balanced_accuracy:.1%}" if trust else "-",
        help="The mean of the per-class recall: a class the model misses counts however rare it is.",
    )
    calibration.metric(
        "calibration error (ECE)",
        f"{trust.ece:.1%}" if trust else "-",
        help="How far the stated confidence is, on average, from how often the model is right.",
    )
    images.metric("images", evaluation.images)
    mistakes.metric("mistakes", len(evaluation.mistakes))
    if trust:
        st.markdown(trust.confident_errors.sentence)
    st.caption(f"{evaluation.source}; computed {evaluation.created.replace('T', ' ')}.")
    if evaluation.leak_note:
        leaky = evaluation.leak_note.startswith("may overlap")
        (st.warning if leaky else st.caption)(
            f"Test-split accuracy {evaluation.accuracy:.1%}: {evaluation.leak_note}."
        )
    if evaluation.unknown_classes:
        listed = ", ".join(f"{name} ({count})" for name, count in sorted(evaluation.unknown_classes.items()))
        st.warning(f"Not scored: classes this model does not know: {listed}.")
    if evaluation.skipped:
        st.warning(
            f"{len(evaluation.skipped)} unreadable file(s) skipped: "
            + ", ".join(p for p, _ in evaluation.skipped[:5])
        )

    matrix, table = st.columns(2, gap="large")
    with matrix:
        normalise = st.toggle("Share of each true class", key="evaluate_normalise")
        st.plotly_chart(confusion_figure(evaluation, normalise), key="confusion")
    with table:
        st.markdown("**Per class**")
        st.dataframe(
            [
                {
                    "class": c.name,
                    "precision": 100 * c.precision,
                    "recall": 100 * c.recall,
                    "F1": 100 * c.f1,
                    "images": c.support,
                }
                for c in evaluation.classes
            ],
            hide_index=True,
            column_config={
                name: st.column_config.NumberColumn(format="%.0f%%") for name in ("precision", "recall", "F1")
            },
        )

    st.subheader("How far the answers can be trusted")
    if trust and evaluation.coverage:
        reliability, coverage = st.columns(2, gap="large")
        reliability.plotly_chart(reliability_figure(trust.reliability), key="reliability")
        coverage.plotly_chart(coverage_figure(evaluation.coverage), key="coverage")
    else:
        st.info("Saved by an earlier version, without these figures: press Evaluate again to compute them.")

    st.subheader("Mistakes, most confidently wrong first")
    if not evaluation.mistakes:
        st.success("No mistakes on these images.")
        if dataset is not None:
            edit_panel(dataset, evaluation.labels, MISTAKES_PANEL, offered=False)  # Undo an earlier fix
        return
    st.caption(
        "Each reads: the true class with the probability the model gave it → the model's answer with its "
        "probability; sorted by the answer's probability, highest first."
    )
    # A picture moved or removed since (here or elsewhere) leaves the gallery; Evaluate again scores the rest.
    present = [
        mistake for mistake in most_confident_first(evaluation.mistakes) if Path(mistake.path).is_file()
    ]
    if gone := len(evaluation.mistakes) - len(present):
        st.caption(f"{plural(gone, 'picture')} moved or removed since: press Evaluate again to score anew.")
    mistakes = present[:MISTAKES_SHOWN]
    for column, mistake in grid_cells(mistakes, GALLERY_COLUMNS):
        with column:
            thumbnail(mistake.path, mistake.caption, THUMBNAIL_SIDE, width=THUMBNAIL_SIDE)
            if dataset is not None:
                picture_box(mistake.path, MISTAKES_PANEL)
    if len(present) > MISTAKES_SHOWN:
        st.caption(f"... and {len(present) - MISTAKES_SHOWN} more (`simpsons evaluate`).")
    if dataset is None:
        st.caption("This run did not record its dataset folder, so its pictures cannot be moved from here.")
        return
    st.markdown(
        "**Fix the labels**: tick the pictures filed under the wrong class, then move or remove them."
    )
    edit_panel(dataset, evaluation.labels, MISTAKES_PANEL)


st.title("Evaluate")
run = pick_completed_run("Run", key="evaluate_run")
if run is None:
    st.stop()

data_change_note(run)
active = active_dataset()
splits = [*SPLITS, "active"] if not trained_on(run, active.path) else list(SPLITS)
split = st.radio("Images", splits, format_func=SPLIT_LABELS.get, horizontal=True, key="evaluate_split")
data_dir = active.path if split == "active" else None
if split == "active":
    st.caption(f"Active dataset: {active.describe()}; its test split (or all of it when it has none).")

try:
    saved = read_evaluation(run.path, folder_split(active.path) if split == "active" else split)
except EXPECTED_ERRORS as error:
    st.error(f"Run {run.id} cannot be read any more: {error}")
    st.stop()
attempted = st.session_state.setdefault("evaluate_opened", set())
if st.button("Evaluate again" if saved else "Evaluate", type="primary", icon=":material/play_arrow:"):
    saved = run_evaluation(run.path, split, data_dir) or saved
elif saved is None and split == AUTO_SPLIT and run.id not in attempted:
    attempted.add(run.id)  # once per session: a failure is shown, not retried on every rerun
    with st.spinner(f"Evaluating {run.id} on its validation images (first visit only)..."):
        saved = run_evaluation(run.path, split, data_dir)
if saved is not None:
    show(saved, active.path if split == "active" else run.dataset_path)
else:
    st.info("Not evaluated on these images yet: press Evaluate.")
st.divider()
export_panel(run)
