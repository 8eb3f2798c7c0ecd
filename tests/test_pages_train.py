"""The Train page: the form starts a detached run with exactly its values, a second start is refused naming
the running run, a fresh session reattaches to it and can cancel it, and the history shows finished runs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from page_helpers import assert_clean, open_page, texts, with_name

from simpsons_core import settings
from simpsons_core.config import AugmentConfig
from simpsons_core.runs.lookup import read_run
from simpsons_core.runs.summary import honest_accuracy

pytest_plugins = ["page_fixtures", "run_fixtures"]


def submit(at) -> None:
    at.get("form_submit_button")[0].click().run()


def wait_until_finished(run_id: str, limit: float = 240.0) -> str:
    """Poll the run folder (as the page's fragment does) until the run is no longer running."""
    deadline = time.monotonic() + limit
    while (state := read_run(run_id).state) == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    return state


def test_the_form_starts_a_run_with_its_values_a_second_is_refused_and_cancel_works(on_dataset: Path) -> None:
    stored = AugmentConfig(rotation_degrees=10.0)
    settings.remember_training_augment(stored)
    at = open_page("train")
    assert with_name(at.info, "No run is training")
    at.number_input(key="train_studio_epochs").set_value(30)
    at.number_input(key="train_studio_size").set_value(32)
    at.number_input(key="train_studio_batch").set_value(16)
    at.number_input(key="train_studio_seed").set_value(7)
    at.selectbox(key="train_studio_model").set_value("tutorial")
    submit(at)
    assert_clean(at)
    run_id = at.session_state.watched_run
    config = json.loads((read_run(run_id).path / "config.json").read_text())
    expected = {"epochs": 30, "image_size": 32, "batch_size": 16, "seed": 7, "model": "tutorial"}
    assert {key: config[key] for key in expected} == expected
    assert config["data_dir"] == str(on_dataset) and config["validation"] == "split"
    assert AugmentConfig.from_dict(config["augment"]) == stored

    submit(at)
    assert with_name(at.warning, "Not started") and with_name(at.warning, run_id)

    tab = open_page("train")  # a refresh, or a second tab
    assert with_name(tab.markdown, run_id) and tab.get("progress")
    next(button for button in tab.button if button.label == "Cancel").click().run()
    assert wait_until_finished(run_id) == "cancelled"
    tab.run()
    assert_clean(tab)
    assert with_name(tab.info, "Cancelled.")
    history = tab.dataframe[0].value
    assert list(history["run"]) == [run_id] and list(history["state"]) == ["cancelled"]


def test_a_finished_run_shows_in_history_with_its_figures(workspace_run: Path) -> None:
    at = open_page("train")
    row = at.dataframe[0].value.iloc[0]
    assert row["run"] == workspace_run.name and row["state"] == "completed"
    assert row["model"] == "tutorial" and row["epochs"] == "1/1"
    assert row["best val accuracy"].endswith("%")
    assert at.multiselect[0].value == [workspace_run.name]


def test_a_run_deleted_while_watched_is_reported(workspace_run: Path) -> None:
    at = open_page("train")
    at.session_state.watched_run = workspace_run.name
    at.run()
    assert with_name(at.success, "Completed.")
    line = honest_accuracy(read_run(workspace_run)).line("best validation accuracy")
    assert with_name(at.caption, f"Accuracy: {line}.")
    temperature = read_run(workspace_run).calibration.temperature
    assert with_name(at.caption, f"calibration: T {temperature:.2f}, ECE ")
    shutil.rmtree(workspace_run)
    at.run()
    assert_clean(at)
    assert with_name(at.warning, "was deleted while shown")
    assert "No runs yet." in texts(at.markdown)


def test_without_a_usable_dataset_start_is_refused(empty_dataset: Path) -> None:
    at = open_page("train")
    assert with_name(at.error, "The active dataset cannot be used")
    submit(at)
    assert_clean(at)
    assert with_name(at.error, "Training needs a dataset with at least two classes")
