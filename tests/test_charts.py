"""The dashboard's figures, checked as Plotly objects (AppTest cannot see charts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simpsons_core.charts import (
    class_counts_figure,
    confusion_figure,
    coverage_figure,
    learning_curves_figure,
    reliability_figure,
    running_average_curve,
    runs_overlay_figure,
    top_classes_figure,
)
from simpsons_core.inference.calibration import CoveragePoint, ReliabilityBin
from simpsons_core.inference.evaluate import Evaluation
from simpsons_core.inference.predict import Prediction
from simpsons_core.run.folder import RunInfo

LABELS = ["bart", "homer", "lisa"]


def run_info(run_id: str = "r1", epochs: int = 2) -> RunInfo:
    return RunInfo(
        id=run_id,
        path=Path("/nowhere") / run_id,
        state="running",
        config={"epochs": epochs},
        epochs=[
            {"type": "epoch", "epoch": 1, "loss": 1.2, "accuracy": 0.4, "val_loss": 1.1, "val_accuracy": 0.5},
        ],
        progress=[
            {"type": "progress", "epoch": 1, "step": 5, "steps": 10, "loss": 1.4, "accuracy": 0.3},
            {"type": "progress", "epoch": 2, "step": 2, "steps": 10, "loss": 1.3, "accuracy": 0.35},
        ],
    )


def evaluation(confusion: list[list[int]]) -> Evaluation:
    return Evaluation("r1", "test", "somewhere", LABELS, 0.0, confusion, [], [], int(np.sum(confusion)))


def test_class_counts_has_one_bar_trace_per_split() -> None:
    figure = class_counts_figure({"train": {"bart": 3, "homer": 5}, "test": {"bart": 1, "homer": 2}})
    assert [trace.name for trace in figure.data] == ["train", "test"]
    assert list(figure.data[0].x) == ["bart", "homer"] and list(figure.data[0].y) == [3, 5]
    assert figure.layout.barmode == "group"


def test_top_classes_puts_the_most_likely_on_top() -> None:
    prediction = Prediction(
        "x.jpg", {"bart": 0.7, "homer": 0.2, "lisa": 0.1}, [("bart", 0.7), ("homer", 0.2)]
    )
    bar = top_classes_figure(prediction).data[0]
    assert list(bar.y) == ["homer", "bart"] and list(bar.x) == [0.2, 0.7]
    assert list(bar.text) == ["20.0%", "70.0%"]


@pytest.mark.parametrize("normalise", [False, True])
def test_confusion_matrix_counts_or_row_shares(normalise: bool) -> None:
    heatmap = confusion_figure(evaluation([[3, 1, 0], [0, 4, 0], [0, 0, 0]]), normalise).data[0]
    values = np.asarray(heatmap.z)
    if normalise:
        np.testing.assert_allclose(values, [[0.75, 0.25, 0], [0, 1, 0], [0, 0, 0]])
        assert list(heatmap.text[0]) == ["75%", "25%", "0%"]
    else:
        np.testing.assert_array_equal(values, [[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    assert list(heatmap.x) == LABELS and list(heatmap.y) == LABELS


def test_the_running_average_is_drawn_per_epoch_with_a_gap_where_keras_restarts_it() -> None:
    xs, ys = running_average_curve(run_info(), "loss")
    # Epoch 1 from its progress line to its end, a gap, then epoch 2's running average: its restart at 1.3
    # (above epoch 1's 1.2) is not joined to epoch 1 as a rise.
    assert xs == [0.5, 1.0, None, 1.2] and ys == [1.4, 1.2, None, 1.3]


def test_learning_curves_show_epoch_figures_as_main_lines_and_the_running_average_as_a_light_dotted_one() -> (
    None
):
    figure = learning_curves_figure(run_info())
    names = [(trace.name, trace.xaxis) for trace in figure.data]
    within = names[0][0]
    assert names == [
        (within, "x"),
        ("training", "x"),
        ("validation", "x"),
        (within, "x2"),
        ("training", "x2"),
        ("validation", "x2"),
    ]
    assert "restarts each epoch" in within
    running_average, training, validation = figure.data[3:]
    assert running_average.line.dash == "dot" and running_average.opacity < 1
    assert "averaged since this epoch began" in running_average.hovertemplate
    assert training.mode == "lines+markers" and training.line.dash is None
    assert (list(training.x), list(training.y)) == ([1], [0.4])
    assert list(validation.x) == [1] and list(validation.y) == [0.5]
    assert tuple(figure.layout.xaxis.range) == (0, 2) and figure.layout.xaxis.dtick == 1


def test_overlay_has_one_line_per_run_on_whole_epoch_ticks() -> None:
    figure = runs_overlay_figure([run_info("a"), run_info("b")], "val_accuracy")
    assert [trace.name for trace in figure.data] == ["a", "b"]
    assert list(figure.data[0].y) == [0.5]
    axis = figure.layout.xaxis
    assert axis.dtick == 1 and axis.tickformat == "d" and axis.title.text == "epoch"
    long = run_info("long")
    long.epochs = [{"type": "epoch", "epoch": n, "val_accuracy": 0.5} for n in range(1, 31)]
    assert runs_overlay_figure([long]).layout.xaxis.dtick == 5  # whole epochs, about 7 ticks


def test_reliability_diagram_has_a_bar_per_bin_with_its_count_and_the_diagonal() -> None:
    bins = [
        ReliabilityBin(0.0, 0.5, 0, None, None),
        ReliabilityBin(0.5, 0.75, 4, 0.6, 0.25),
        ReliabilityBin(0.75, 1.0, 12, 0.9, 1.0),
    ]
    bars, diagonal = reliability_figure(bins).data
    assert list(bars.x) == [0.25, 0.625, 0.875] and list(bars.width) == [0.5, 0.25, 0.25]
    assert list(bars.y) == [None, 0.25, 1.0]
    assert list(bars.text) == ["0", "4", "12"]
    assert [row[3] for row in bars.customdata] == ["-", "60.0%", "90.0%"]  # mean confidence, in the hover
    assert (list(diagonal.x), list(diagonal.y)) == ([0, 1], [0, 1])


def test_coverage_figure_plots_accuracy_against_the_share_answered() -> None:
    points = [CoveragePoint(0.4, 1.0, 0.7), CoveragePoint(0.8, 0.6, 0.9), CoveragePoint(0.95, 0.2, 1.0)]
    (line,) = coverage_figure(points).data
    assert list(line.x) == [1.0, 0.6, 0.2] and list(line.y) == [0.7, 0.9, 1.0]
    assert list(line.customdata) == [0.4, 0.8, 0.95]  # the confidence cut, in the hover
