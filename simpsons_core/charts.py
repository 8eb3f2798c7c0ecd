"""Plotly figures of the core's results, built here rather than in the pages so that tests can check them as
objects (Streamlit's AppTest cannot see charts) and a notebook can draw the same pictures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import groupby

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simpsons_core.inference.calibration import CoveragePoint, ReliabilityBin
from simpsons_core.inference.evaluate import Evaluation
from simpsons_core.inference.predict import Prediction
from simpsons_core.run.folder import RunInfo

SPLIT_COLOURS = {"train": "#F5A300", "test": "#1F77B4", "validation": "#2CA02C"}
CURVE_COLOURS = {"training": "#F5A300", "validation": "#1F77B4"}
METRICS = ("loss", "accuracy")
WITHIN_EPOCH = "training, within the epoch (running average, restarts each epoch)"
_MARGINS = {"l": 10, "r": 10, "t": 40, "b": 10}


def class_counts_figure(counts: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Grouped bars of images per class, one colour per split. `counts`: split -> class -> images."""
    figure = go.Figure()
    for split, per_class in counts.items():
        figure.add_trace(
            go.Bar(
                name=split,
                x=list(per_class),
                y=list(per_class.values()),
                text=list(per_class.values()),
                marker_color=SPLIT_COLOURS.get(split),
            )
        )
    figure.update_layout(
        barmode="group",
        title="Images per class",
        yaxis_title="images",
        margin=_MARGINS,
        legend_title="split",
        height=340,
    )
    return figure


def top_classes_figure(prediction: Prediction) -> go.Figure:
    """Horizontal bars of the top classes' probabilities, the most likely on top."""
    names = [name for name, _ in prediction.top][::-1]
    values = [p for _, p in prediction.top][::-1]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            text=[f"{p:.1%}" for p in values],
            textposition="auto",
            marker_color="#F5A300",
        )
    )
    figure.update_layout(
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability"},
        height=60 + 40 * len(names),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return figure


def confusion_figure(evaluation: Evaluation, normalise: bool = False) -> go.Figure:
    """Confusion matrix heatmap: rows the true class, columns the prediction; counts or shares of each row."""
    counts = np.asarray(evaluation.confusion, dtype=float)
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        text = [[f"{v:.0%}" for v in row] for row in values]
    else:
        values = counts
        text = [[str(int(v)) for v in row] for row in counts]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=evaluation.labels,
            y=evaluation.labels,
            text=text,
            texttemplate="%{text}",
            colorscale="YlOrBr",
            zmin=0,
            zmax=1 if normalise else None,
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Confusion matrix" + (" (share of each true class)" if normalise else " (images)"),
        xaxis_title="predicted",
        yaxis={"title": "true", "autorange": "reversed"},
        margin=_MARGINS,
    )
    return figure


def reliability_figure(bins: Sequence[ReliabilityBin]) -> go.Figure:
    """A reliability diagram: each confidence bin's accuracy as a bar (its image count on it), against the
    diagonal a perfectly calibrated model would follow. Bars below the diagonal are over-confidence."""
    figure = go.Figure(
        go.Bar(
            name="accuracy in bin",
            x=[(b.lower + b.upper) / 2 for b in bins],
            y=[b.accuracy for b in bins],
            width=[b.upper - b.lower for b in bins],
            text=[str(b.count) for b in bins],
            customdata=[
                [b.lower, b.upper, b.count, "-" if b.confidence is None else f"{b.confidence:.1%}"]
                for b in bins
            ],
            hovertemplate="confidence %{customdata[0]:.0%}-%{customdata[1]:.0%}: %{customdata[2]} images"
            "<br>mean confidence %{customdata[3]}<br>accuracy %{y:.1%}<extra></extra>",
            marker_color=CURVE_COLOURS["validation"],
        )
    )
    figure.add_trace(
        go.Scatter(
            name="perfect calibration",
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"color": "grey", "dash": "dash"},
            hoverinfo="skip",
        )
    )
    figure.update_layout(
        title="Reliability: accuracy per confidence bin (images on the bars)",
        xaxis={"title": "top-class confidence", "range": [0, 1], "tickformat": ".0%"},
        yaxis={"title": "accuracy", "range": [0, 1.02], "tickformat": ".0%"},
        height=360,
        margin=_MARGINS,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def coverage_figure(points: Sequence[CoveragePoint]) -> go.Figure:
    """Accuracy of the answers given against the share of images answered, as the confidence cut rises from
    answering everything (right end) to answering only the most confident (left end)."""
    figure = go.Figure(
        go.Scatter(
            x=[p.coverage for p in points],
            y=[p.accuracy for p in points],
            customdata=[p.threshold for p in points],
            mode="lines+markers",
            line={"color": CURVE_COLOURS["training"]},
            hovertemplate="answer at confidence >= %{customdata:.3f}<br>%{x:.1%} of images answered,"
            " %{y:.1%} right<extra></extra>",
        )
    )
    figure.update_layout(
        title="Coverage: accuracy when answering only above a confidence cut",
        xaxis={"title": "share of images answered", "range": [0, 1.02], "tickformat": ".0%"},
        yaxis={"title": "accuracy of the answers", "range": [0, 1.02], "tickformat": ".0%"},
        height=360,
        margin=_MARGINS,
    )
    return figure


def running_average_curve(info: RunInfo, metric: str) -> tuple[list[float | None], list[float | None]]:
    """(x in epochs, values) of a training metric as Keras reports it within each epoch: a running average
    since the epoch began, which restarts at every epoch. One segment per epoch, from its progress lines to
    its end value, with a gap (None) between segments so the restart is not drawn as a drop or a jump.

    Epoch e's progress line at step s of S sits at x = e - 1 + s/S, its end at x = e, so the curve moves
    during the first epoch already.
    """
    points = [
        (line["epoch"], line["epoch"] - 1 + line["step"] / line["steps"], line[metric])
        for line in info.progress
        if line.get(metric) is not None and line.get("steps")
    ]
    points += [
        (line["epoch"], line["epoch"], line[metric]) for line in info.epochs if line.get(metric) is not None
    ]
    xs: list[float | None] = []
    ys: list[float | None] = []
    for _, segment in groupby(sorted(points), key=lambda point: point[0]):
        if xs:
            xs.append(None)
            ys.append(None)
        for _, x, y in segment:
            xs.append(x)
            ys.append(y)
    return xs, ys


def epoch_curve(info: RunInfo, key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of an epoch-line metric such as "val_accuracy", one point per finished epoch."""
    points = [(line["epoch"], line[key]) for line in info.epochs if line.get(key) is not None]
    return [x for x, _ in points], [y for _, y in points]


def epoch_axis(last_epoch: int) -> dict[str, object]:
    """An x axis of whole epochs: integer ticks only (no "epoch 1.5"), at most about 7 of them."""
    return {"title": "epoch", "tick0": 0, "dtick": max(1, math.ceil(last_epoch / 7)), "tickformat": "d"}


def learning_curves_figure(info: RunInfo) -> go.Figure:
    """Loss and accuracy side by side, training against validation, for one run (finished or still going).

    Each epoch's training figure is the main line, with markers, beside its validation figure. What Keras
    reports within an epoch is a running average that restarts at every epoch, so it saw-tooths at each start
    although the model is not getting worse: it is drawn as a light dotted line in segments, and said so in
    its legend and hover.
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.08)
    for column, metric in enumerate(METRICS, start=1):
        value = "%{y:.1%}" if metric == "accuracy" else "%{y:.3f}"
        traces = (
            (
                WITHIN_EPOCH,
                running_average_curve(info, metric),
                {
                    "mode": "lines",
                    "opacity": 0.5,
                    "line": {"color": CURVE_COLOURS["training"], "dash": "dot"},
                },
                f"epoch %{{x:.2f}}: {value}, averaged since this epoch began<extra>{WITHIN_EPOCH}</extra>",
            ),
            (
                "training",
                epoch_curve(info, metric),
                {"mode": "lines+markers", "line": {"color": CURVE_COLOURS["training"]}},
                f"end of epoch %{{x}}: {value} on the training images<extra>training</extra>",
            ),
            (
                "validation",
                epoch_curve(info, f"val_{metric}"),
                {"mode": "lines+markers", "line": {"color": CURVE_COLOURS["validation"]}},
                f"end of epoch %{{x}}: {value} on the validation images<extra>validation</extra>",
            ),
        )
        for name, (xs, ys), style, hover in traces:
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=name,
                    legendgroup=name,
                    showlegend=column == 1,
                    marker={"size": 9},
                    hovertemplate=hover,
                    **style,
                ),
                row=1,
                col=column,
            )
    config = info.train_config()
    epochs = config.epochs if config else max([line["epoch"] for line in info.epochs], default=1)
    figure.update_xaxes(range=[0, epochs], **epoch_axis(epochs))
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    figure.update_layout(height=340, margin=_MARGINS, legend={"orientation": "h", "y": -0.2})
    return figure


def runs_overlay_figure(infos: Sequence[RunInfo], metric: str = "val_accuracy") -> go.Figure:
    """One line per run for an epoch metric (e.g. "val_accuracy", "loss"), to compare runs."""
    figure = go.Figure()
    for info in infos:
        xs, ys = epoch_curve(info, metric)
        figure.add_trace(go.Scatter(x=xs, y=ys, name=info.id, mode="lines+markers"))
    last_epoch = max((x for trace in figure.data for x in trace.x), default=1)
    figure.update_layout(
        title=f"{metric.replace('_', ' ')} per epoch",
        xaxis=epoch_axis(last_epoch),
        yaxis={"title": metric.replace("_", " "), "tickformat": ".0%" if "accuracy" in metric else None},
        height=360,
        margin=_MARGINS,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure
