"""The Evaluate page: no run yet points to Train; the validation images are evaluated on opening; a run is
evaluated on a split with its figures, trust figures, charts and mistakes (captioned with both probabilities,
in caption order, in a regular grid); an evaluation saved before the trust figures shows "-" for them; a
dataset with classes the model does not know, and a run deleted while shown, get specific messages; the Export
panel builds a format and offers its download; a mistake is moved to another class from the gallery and the
move undone, and the page (and Train) then say the data changed after the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from media_capture import ServedMedia, image_size
from page_helpers import assert_clean, open_page, other_classes_dataset, with_name

from simpsons_core.inference.evaluate import evaluate, most_confident_first, read_evaluation

pytest_plugins = ["page_fixtures", "run_fixtures", "media_capture"]


def evaluate_button(at):
    return next(button for button in at.button if button.label.startswith("Evaluate"))


def chart_titles(at) -> list[str]:
    """The titles of the Plotly charts on the page (AppTest has no chart element, but keeps their specs)."""
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def test_without_a_run_the_page_says_how_to_get_one(on_dataset: Path) -> None:
    at = open_page("evaluate")
    assert with_name(at.info, "There is no trained model yet")
    assert not at.button


def test_opening_evaluates_the_validation_images_once(workspace_run: Path) -> None:
    at = open_page("evaluate")
    assert at.radio(key="evaluate_split").value == "validation"
    saved = read_evaluation(workspace_run, "validation")
    assert saved is not None
    assert {metric.label: metric.value for metric in at.metric}["accuracy"] == f"{saved.accuracy:.1%}"
    assert not with_name(at.info, "Not evaluated")
    (workspace_run / "evaluation-validation.json").unlink()
    at.run()  # the same session: not evaluated again behind the user's back
    assert_clean(at)
    assert with_name(at.info, "Not evaluated on these images yet")


def test_evaluating_the_test_split_shows_accuracy_matrix_classes_and_mistakes(
    workspace_run: Path, served_media: ServedMedia
) -> None:
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
    shown = most_confident_first(saved.mistakes)[:24]
    assert shown and [image.captions[0] for image in at.image] == [mistake.caption for mistake in shown]
    worst = shown[0]
    assert worst.caption == (
        f"{worst.true_label} {worst.probabilities[worst.true_label]:.0%} → "
        f"{worst.predicted} {worst.probabilities[worst.predicted]:.0%}"
    )
    confidences = [mistake.confidence for mistake in shown]
    assert confidences == sorted(confidences, reverse=True)
    [(width, height)] = {image_size(served_media, image.value[0]) for image in at.image}  # one size for all
    assert width == height

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


def test_the_export_panel_builds_a_format_and_offers_it(workspace_run: Path) -> None:
    at = open_page("evaluate")
    assert with_name(at.caption, "Nothing exported yet")
    assert at.button_group(key="export_formats").value == ["keras"]
    at.button(key="export_build").click().run()
    assert_clean(at)
    [status] = at.status
    assert status.label.startswith("keras: ") and "top-1 agreement 100%" in status.label
    assert (workspace_run / "exports" / "model.keras").is_file()
    labels = [button.label for button in at.download_button]
    assert labels == ["Download keras", "Download all, with the manifest (.zip)"]

    again = open_page("evaluate")  # built earlier: offered without building again
    assert [button.label for button in again.download_button] == labels and not again.status


def test_a_run_deleted_while_shown_is_handled(workspace_run: Path) -> None:
    at = open_page("evaluate")
    assert at.selectbox(key="evaluate_run").value == workspace_run.name
    shutil.rmtree(workspace_run)
    evaluate_button(at).click().run()
    assert_clean(at)
    assert with_name(at.info, "There is no trained model yet")


@pytest.fixture
def own_data(
    workspace_run: Path, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A private copy of the tiny dataset (a test may change it), active, and recorded as the one the run in
    the workspace trained on; returns the copy."""
    copy = Path(shutil.copytree(tiny_dataset, tmp_path / "own"))
    config_path = workspace_run / "config.json"
    config = json.loads(config_path.read_text())
    config["data_dir"] = config["dataset"]["path"] = str(copy)
    config_path.write_text(json.dumps(config))
    monkeypatch.setenv("SIMPSONS_DATA", str(copy))
    return copy


def test_a_mistake_is_moved_to_the_class_it_shows_and_the_move_undone(
    own_data: Path, workspace_run: Path
) -> None:
    at = open_page("evaluate")
    saved = read_evaluation(workspace_run, "validation")
    worst = most_confident_first(saved.mistakes)[0]
    assert not [button for button in at.button if button.key == "evaluate_mistakes_move"]
    at.checkbox(key="evaluate_mistakes_consent").check().run()  # the user's folder: asked first
    at.checkbox(key=f"evaluate_mistakes_pick:{worst.path}").check().run()
    at.selectbox(key="evaluate_mistakes_target").set_value(worst.predicted)
    target = Path(worst.path).parents[1] / worst.predicted
    before, content = set(target.iterdir()), Path(worst.path).read_bytes()
    at.button(key="evaluate_mistakes_move").click().run()
    assert_clean(at)
    [moved] = set(target.iterdir()) - before  # the same name, with a suffix when the class has it already
    assert moved.read_bytes() == content and not Path(worst.path).exists()
    assert with_name(at.success, f"1 picture moved to {worst.predicted}")
    assert with_name(at.caption, "1 picture moved or removed since")
    assert worst.caption not in [image.captions[0] for image in at.image]
    assert with_name(at.info, "The data changed after this run")
    train = open_page("train")  # the Train page says so too, naming the run
    assert with_name(train.info, "The data changed after this run")

    at.button(key="evaluate_mistakes_undo").click().run()
    assert_clean(at)
    assert with_name(at.success, f"Undone: 1 picture moved to {worst.predicted}")
    assert Path(worst.path).read_bytes() == content and not moved.exists()
    assert worst.caption in [image.captions[0] for image in at.image]
