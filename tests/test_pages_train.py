"""The Train page: the form starts a detached run with exactly its values, a second start is refused naming
the running run, a fresh session reattaches to it and can cancel it, and the history shows finished runs.
Also: labels whole, the held-out share only for a held-out split, a time estimate from earlier runs, and
renaming a run or moving it to the trash."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from page_helpers import assert_clean, open_page, texts, with_name

from simpsons_core import paths, settings
from simpsons_core.config import DEFAULT_RECIPE, RECIPE_NOTES, AugmentConfig
from simpsons_core.run.lookup import list_runs, read_run
from simpsons_core.run.summary import honest_accuracy

pytest_plugins = ["page_fixtures", "run_fixtures"]


def click(at, label: str) -> None:
    next(button for button in at.button if button.label == label).click().run()


def submit(at) -> None:
    click(at, "Start training")


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
    at.number_input(key=f"train_{DEFAULT_RECIPE}_epochs").set_value(30)
    at.number_input(key=f"train_{DEFAULT_RECIPE}_size").set_value(32)
    at.number_input(key=f"train_{DEFAULT_RECIPE}_batch").set_value(16)
    at.number_input(key=f"train_{DEFAULT_RECIPE}_seed").set_value(7)
    at.selectbox(key=f"train_{DEFAULT_RECIPE}_model").set_value("tutorial")
    submit(at)
    assert_clean(at)
    run_id = at.session_state.watched_run
    assert at.session_state.run_training  # so the history polls while it trains
    assert list(at.dataframe[0].value["state"]) == ["running"]
    config = json.loads((read_run(run_id).path / "config.json").read_text())
    expected = {"epochs": 30, "image_size": 32, "batch_size": 16, "seed": 7, "model": "tutorial"}
    assert {key: config[key] for key in expected} == expected
    assert config["data_dir"] == str(on_dataset) and config["validation"] == "split"
    assert AugmentConfig.from_dict(config["augment"]) == stored

    submit(at)
    assert with_name(at.warning, "Not started") and with_name(at.warning, run_id)

    tab = open_page("train")  # a refresh, or a second tab
    assert with_name(tab.markdown, run_id) and tab.get("progress")
    click(tab, "Cancel")
    assert wait_until_finished(run_id) == "cancelled"
    tab.run()
    assert_clean(tab)
    assert with_name(tab.info, "Cancelled.")
    history = tab.dataframe[0].value
    assert list(history["run"]) == [run_id] and list(history["state"]) == ["cancelled"]
    assert list(history.columns[:3]) == ["run", "state", "duration"]  # seen without scrolling sideways


def test_a_finished_run_shows_in_history_with_its_figures(workspace_run: Path) -> None:
    at = open_page("train")
    row = at.dataframe[0].value.iloc[0]
    assert row["run"] == workspace_run.name and row["state"] == "completed"
    assert row["model"] == "tutorial" and row["epochs"] == "1/1"
    assert row["best val accuracy"].endswith("%")
    assert at.multiselect(key="compare_runs").value == [workspace_run.name]


def test_recipe_notes_show_whole_and_the_held_out_share_only_for_a_held_out_split(on_dataset: Path) -> None:
    at = open_page("train")
    assert at.segmented_control(key="train_recipe").options == ["pretrained", "studio", "quick", "tutorial"]
    assert with_name(at.caption, f"**{DEFAULT_RECIPE}**: {RECIPE_NOTES[DEFAULT_RECIPE]}.")
    assert with_name(at.caption, "no augmentation chosen yet")  # why the toggle is off
    assert at.toggle(key=f"train_{DEFAULT_RECIPE}_augment").disabled
    assert at.slider(key=f"train_{DEFAULT_RECIPE}_fraction")
    at.radio(key=f"train_{DEFAULT_RECIPE}_validation").set_value("test").run()
    assert_clean(at)
    assert not [slider for slider in at.slider if slider.key == f"train_{DEFAULT_RECIPE}_fraction"]
    at.segmented_control(key="train_recipe").set_value("tutorial").run()
    assert with_name(at.caption, f"**tutorial**: {RECIPE_NOTES['tutorial']}.")


def test_start_shows_the_time_earlier_runs_of_the_model_and_size_took(workspace_run: Path) -> None:
    at = open_page("train")
    assert not with_name(at.caption, "Should take")  # no earlier compact run at 64 px
    at.selectbox(key=f"train_{DEFAULT_RECIPE}_model").set_value("tutorial")
    at.number_input(key=f"train_{DEFAULT_RECIPE}_size").set_value(32).run()
    assert_clean(at)
    assert with_name(at.caption, "from 1 earlier run of tutorial at 32 px.")


def test_a_run_is_renamed_and_then_moved_to_the_trash_after_a_confirmation(workspace_run: Path) -> None:
    at = open_page("train")
    assert with_name(at.caption, "Delete moves the run folder to the trash folder")
    at.text_input(key="manage_name").set_value("first try")
    click(at, "Rename")
    assert_clean(at)
    renamed = "20260101-120000-first-try"  # the start time stays in front
    assert [info.id for info in list_runs()] == [renamed]
    assert with_name(at.success, f"Renamed {workspace_run.name} to {renamed}")
    assert list(at.dataframe[0].value["run"]) == [renamed]

    delete = next(button for button in at.button if button.label == "Delete run")
    assert delete.disabled  # until confirmed
    at.checkbox(key=f"manage_confirm_{renamed}").check().run()
    click(at, "Delete run")
    assert_clean(at)
    assert list_runs() == []
    [trashed] = (paths.trash_dir() / "runs").iterdir()
    assert trashed.name.startswith(renamed) and (trashed / "config.json").is_file()
    assert with_name(at.success, f"Moved {renamed} to the trash")
    assert "No runs yet." in texts(at.markdown)


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
