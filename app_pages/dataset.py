"""Dataset: images per class and split, a few samples of each class, and the scan's health report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import streamlit as st

from app_pages.shared import active_dataset, dataset_layout, reported, show_image
from simpsons_core.charts import class_counts_figure
from simpsons_core.data.scan import DuplicatePair, ScanReport, scan_dataset

SAMPLES_PER_CLASS = 8
PAIRS_SHOWN = 8
PAIRS_PER_ROW = 2
LEAKAGE_MEANS = (
    "A test image that is a near-duplicate of a training image (the same frame re-encoded, resized, "
    "mirrored, or the next frame of the same shot) tests memory, not recognition: accuracy on this test "
    "split overstates how the model does on pictures it has never seen. The Train page's default validation "
    "(a split of the training folder that keeps near-duplicates on one side) gives the honest figure."
)


def show_pair(report: ScanReport, pair: DuplicatePair, labels: tuple[str, str]) -> None:
    root = Path(report.root)
    how = (
        "identical file"
        if pair.identical
        else f"{pair.distance} bits apart" + (", mirrored" if pair.mirrored else "")
    )
    left, right = st.columns(2)
    with left:
        show_image(root / pair.first, f"{labels[0]}: {pair.first}")
    with right:
        show_image(root / pair.second, f"{labels[1]}: {pair.second} ({how})")


def show_pairs(report: ScanReport, pairs: list[DuplicatePair], labels: tuple[str, str]) -> None:
    columns = st.columns(PAIRS_PER_ROW)
    for index, pair in enumerate(pairs[:PAIRS_SHOWN]):
        with columns[index % PAIRS_PER_ROW], st.container(border=True):
            show_pair(report, pair, labels)
    if len(pairs) > PAIRS_SHOWN:
        st.caption(f"... and {len(pairs) - PAIRS_SHOWN} more (`python -m simpsons_core scan DIR` lists all).")


st.title("Dataset")
st.caption(f"Active dataset: {active_dataset().describe()}")
layout = dataset_layout()
if layout is None:
    st.stop()

report = None
with reported("The scan failed"):
    bar = st.progress(0.0, text="Scanning...")
    report = scan_dataset(
        layout.root, progress=lambda done, total: bar.progress(done / max(total, 1), text="Scanning...")
    )
    bar.empty()
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
            show_image(item.path, side=128)

st.subheader("Health report")
if report.leakage is not None:
    st.markdown("#### Train/test leakage")
    leakage = report.leakage
    (st.warning if leakage.near_duplicates else st.success)(leakage.summary + ".")
    st.write(LEAKAGE_MEANS)
    if leakage.pairs:
        show_pairs(report, leakage.pairs, ("test", "train"))

st.markdown("#### Duplicates within a split")
for duplicates in report.duplicates:
    if not duplicates.pairs:
        st.write(f"{duplicates.split}: no duplicates.")
        continue
    st.write(
        f"{duplicates.split}: {len(duplicates.pairs)} near-duplicate pairs in {duplicates.clusters} clusters "
        f"({duplicates.clustered_images} images); {duplicates.identical_files} byte-identical files."
    )
    with st.expander(f"Show the {duplicates.split} duplicates"):
        show_pairs(report, duplicates.pairs, (duplicates.split, duplicates.split))

st.markdown("#### Class balance")
for split in report.splits:
    ratio = f"{split.imbalance:.2f}" if split.imbalance else "-"
    st.write(f"{split.name}: the largest class has {ratio} times the images of the smallest.")

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
