"""The Evaluate page: no run yet points to Train; a run is evaluated on a split with its figures, trust
figures, charts and mistakes; an evaluation saved before the trust figures shows "-" for them; a dataset with
classes the model does not know, and a run deleted while shown, get specific messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from page_helpers import assert_clean, open_page, other_classes_dataset, with_name

from simpsons_core.inference.evaluate import evaluate, read_evaluation

pytest_plugins = ["page_fixtures", "run_fixtures"]


def evaluate_button(at):
    return next(button for button in at.button if button.label.startswith("Evaluate"))


def chart_titles(at) -> list[str]:
    """The titles of the Plotly charts on the page (AppTest has no chart element, but keeps their specs)."""
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def test_without_a_run_the_page_says_how_to_get_one(on_dataset: Path) -> None:
    at = open_page("evaluate")
    assert with_name(at.info, "There is no trained model yet")
    assert not at.button


def test_evaluating_the_test_split_shows_accuracy_matrix_classes_and_mistakes(workspace_run: Path) -> None:
    at = open_page("evaluate")
    at.radio(key="evaluate_split").set_value("test").run()
    assert with_name(at.info, "Not evaluated on these images yet")
    evaluate_button(at).click().run()
    assert_clean(at)
    saved = read_evaluation(workspace_run, "test")
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics == {
        "accuracy": f"{saved.accuracy:.1%}",
        "balanced accuracy": f"{saved.trust.balanced_accuracy:.1%}",
        "calibration error (ECE)": f"{saved.trust.ece:.1%}",
        "images": str(saved.images),
        "mistakes": str(len(saved.mistakes)),
    }
    assert with_name(at.markdown, saved.trust.confident_errors.sentence)
    titles = chart_titles(at)
    assert len(titles) == 3 and titles[1].startswith("Reliability") and titles[2].startswith("Coverage")
    per_class = at.dataframe[0].value
    assert list(per_class["class"]) == saved.labels and list(per_class["images"]) == [
        c.support for c in saved.classes
    ]
    worst = saved.mistakes[0]
    first_caption = at.image[0].captions[0]
    assert first_caption.startswith(f"{worst.true_label} → {worst.predicted}")
    assert len(at.image) == min(24, len(saved.mistakes))

    again = open_page("evaluate")  # saved: shown without recomputing
    again.radio(key="evaluate_split").set_value("test").run()
    assert {metric.label: metric.value for metric in again.metric} == metrics
    again.toggle(key="evaluate_normalise").set_value(True).run()
    assert_clean(again)


def test_an_evaluation_saved_before_the_trust_figures_shows_dashes(workspace_run: Path) -> None:
    evaluate(workspace_run, "test")
    path = workspace_run / "evaluation-test.json"
    older = json.loads(path.read_text())
    del older["trust"], older["coverage"]
    path.write_text(json.dumps(older))
    at = open_page("evaluate")
    at.radio(key="evaluate_split").set_value("test").run()
    assert_clean(at)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["accuracy"] == f"{older['accuracy']:.1%}"
    assert metrics["balanced accuracy"] == metrics["calibration error (ECE)"] == "-"
    assert with_name(at.info, "Saved by an earlier version")
    assert len(chart_titles(at)) == 1  # the confusion matrix only
    evaluate_button(at).click().run()  # evaluating again brings the figures back
    assert_clean(at)
    assert at.metric[1].value == f"{read_evaluation(workspace_run, 'test').trust.balanced_accuracy:.1%}"
    assert len(chart_titles(at)) == 3


def test_classes_the_model_does_not_know_are_reported(
    workspace_run: Path, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = other_classes_dataset(tiny_dataset, tmp_path / "other")
    monkeypatch.setenv("SIMPSONS_DATA", str(other))
    at = open_page("evaluate")
    at.radio(key="evaluate_split").set_value("active").run()
    evaluate_button(at).click().run()
    assert_clean(at)
    assert with_name(at.warning, "classes this model does not know: ned_flanders")


def test_a_run_deleted_while_shown_is_handled(workspace_run: Path) -> None:
    at = open_page("evaluate")
    assert at.selectbox(key="evaluate_run").value == workspace_run.name
    shutil.rmtree(workspace_run)
    evaluate_button(at).click().run()
    assert_clean(at)
    assert with_name(at.info, "There is no trained model yet")
