"""Dataset: images per class and split, a few samples of each class, and the scan's health report."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import streamlit as st

from app_pages.shared import (
    active_dataset,
    dataset_layout,
    edit_panel,
    picture_box,
    plural,
    reported,
    thumbnail,
)
from simpsons_core.charts import class_counts_figure
from simpsons_core.data.scan import (
    DuplicatePair,
    ScanPace,
    ScanReport,
    SplitDuplicates,
    class_weights_advice,
    scan_dataset,
)
from simpsons_core.run.summary import format_seconds

SAMPLES_PER_CLASS = 8
PAIRS_SHOWN = 8
PAIRS_PER_ROW = 2
THUMBNAIL_SIDE = 256  # every thumbnail is letterboxed to this square, so rows of cards line up
PAIRS_PANEL = "dataset_pairs"  # the leakage and duplicate pairs share one move / remove panel
SPLIT_WORDS = {"train": "training", "test": "test"}
LEAKAGE_MEANS = (
    "A test image that is a near-duplicate of a training image (the same frame re-encoded, resized, "
    "mirrored, or the next frame of the same shot) tests memory, not recognition: accuracy on this test "
    "split overstates how the model does on pictures it has never seen. The Train page's default validation "
    "(a split of the training folder that keeps near-duplicates on one side) gives the honest figure."
)


def show_pair(report: ScanReport, pair: DuplicatePair, sides: tuple[str, str]) -> None:
    """One card: the class as a heading (both when they differ) and how close the pair is, then the two images
    captioned by file name only, so captions stay short enough not to break mid-name, each with a checkbox
    choosing it for `PAIRS_PANEL`'s move or remove."""
    root = Path(report.root)
    how = (
        "identical file"
        if pair.identical
        else f"{pair.distance} bits apart" + (", mirrored" if pair.mirrored else "")
    )
    classes = (
        pair.first_label
        if pair.first_label == pair.second_label
        else f"{pair.first_label} / {pair.second_label}"
    )
    st.markdown(f"**{classes}** · {how}")
    left, right = st.columns(2)
    for column, side, path in ((left, sides[0], pair.first), (right, sides[1], pair.second)):
        with column:
            thumbnail(root / path, f"{side}: {Path(path).name}", THUMBNAIL_SIDE)
            picture_box(root / path, PAIRS_PANEL, "Select")


def show_pairs(report: ScanReport, pairs: list[DuplicatePair], sides: tuple[str, str], more: str) -> None:
    """`pairs` as cards, then `more` (what is not shown) when there is something to say."""
    columns = st.columns(PAIRS_PER_ROW)
    for index, pair in enumerate(pairs):
        with columns[index % PAIRS_PER_ROW], st.container(border=True):
            show_pair(report, pair, sides)
    if more:
        st.caption(f"... and {more} (`simpsons scan DIR --limit 0` lists every pair).")


def duplicates_sentences(duplicates: SplitDuplicates) -> str:
    """The within-split duplicates in plain sentences."""
    images = f"{SPLIT_WORDS[duplicates.split]} images"
    pairs = len(duplicates.pairs)
    if not pairs:
        return f"No near-duplicate {images}."
    text = f"{plural(pairs, 'pair')} of near-duplicate {images}"
    if duplicates.clusters == pairs:
        text += f" ({duplicates.clustered_images:,} images)."
    else:
        text += f", in {plural(duplicates.clusters, 'group')} ({duplicates.clustered_images:,} images)."
    if duplicates.identical_files:
        text += f" {duplicates.identical_files:,} files are byte-identical copies of another."
    return text


def scan_with_progress(root: Path) -> ScanReport:
    """The scan, with a bar that counts the images read and the time left (a cold scan takes a while), then
    names the comparison that follows."""
    bar = st.progress(0.0, text="Looking for images...")
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        pace = ScanPace(done, total, time.monotonic() - started)
        if done >= total:
            bar.progress(1.0, text=f"Read {total:,} images. Comparing them for duplicates and leakage...")
            return
        left = pace.seconds_left
        text = f"Reading images: {done:,} of {total:,}" + (
            f", about {format_seconds(left)} left" if left is not None else ""
        )
        bar.progress(pace.fraction, text=text)

    report = scan_dataset(root, progress=progress)
    bar.empty()
    return report


st.title("Dataset")
st.caption(f"Active dataset: {active_dataset().describe()}")
layout = dataset_layout()
if layout is None:
    st.stop()

report = None
with reported("The scan failed"):
    report = scan_with_progress(layout.root)
if report is None:
    st.stop()

st.write(report.description)
summary = {split.name: split for split in report.splits}
figures = st.columns(5)
figures[0].metric("classes", len(report.classes))
figures[1].metric("training images", summary["train"].total)
figures[2].metric("test images", summary["test"].total if "test" in summary else "none")
figures[3].metric("problems", len(report.problems))
imbalance = summary["train"].imbalance
figures[4].metric(
    "class imbalance", f"{imbalance:.2f}x" if imbalance else "-", help="largest class / smallest class"
)

st.plotly_chart(
    class_counts_figure({split.name: split.counts for split in report.splits}), key="class_counts"
)

st.subheader("Samples")
for name, items in layout.samples(SAMPLES_PER_CLASS).items():
    st.markdown(f"**{name}**")
    for column, item in zip(st.columns(SAMPLES_PER_CLASS), items, strict=False):
        with column:
            thumbnail(item.path, side=THUMBNAIL_SIDE)

st.subheader("Health report")
if report.leakage is not None:
    st.markdown("#### Train/test leakage")
    leakage = report.leakage
    (st.warning if leakage.near_duplicates else st.success)(leakage.summary + ".")
    st.write(LEAKAGE_MEANS)
    if leakage.pairs:
        st.caption("A sample across classes: each test image beside its closest training twin.")
        sample = leakage.sample_pairs(PAIRS_SHOWN)
        hidden = leakage.near_duplicates - len(sample)
        show_pairs(
            report,
            sample,
            ("test", "train"),
            f"{plural(hidden, 'more test image')} with a twin" if hidden else "",
        )

st.markdown("#### Duplicates within a split")
for duplicates in report.duplicates:
    st.write(duplicates_sentences(duplicates))
    if duplicates.pairs:
        with st.expander(f"Show the {SPLIT_WORDS[duplicates.split]} duplicates"):
            hidden = len(duplicates.pairs) - PAIRS_SHOWN
            more = plural(hidden, "more pair") if hidden > 0 else ""
            show_pairs(report, duplicates.pairs[:PAIRS_SHOWN], (duplicates.split,) * 2, more)
pairs = (report.leakage is not None and report.leakage.pairs) or any(item.pairs for item in report.duplicates)
if pairs:
    st.markdown(
        "**Fix the pairs**: tick the copies to drop (or a picture filed under the wrong class), then:"
    )
edit_panel(Path(report.root), report.classes, PAIRS_PANEL, offered=bool(pairs))

st.markdown("#### Class balance")
for split in report.splits:
    ratio = f"{split.imbalance:.2f}" if split.imbalance else "-"
    st.write(f"{split.name}: the largest class has {ratio} times the images of the smallest.")
if advice := class_weights_advice(report):
    st.warning(advice)

st.markdown("#### Problems")
if not report.problems:
    st.success("No problems found: every file is a readable image in a class folder.")
else:
    kinds = Counter(problem.kind for problem in report.problems)
    st.warning("Found " + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common()) + ".")
    st.dataframe(
        [{"kind": p.kind, "file": report.shown(p.path), "problem": p.message} for p in report.problems],
        hide_index=True,
        width="stretch",
    )
