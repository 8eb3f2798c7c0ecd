"""`runs` on the command line and `run.manage`: the table, `show latest`, rename, delete to the trash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simpsons_core import paths
from simpsons_core.cli.main import main
from simpsons_core.run import manage, process
from simpsons_core.run.folder import RunFolder


def make_run(run_id: str, state: str = "completed", model: str = "compact", **status: object) -> Path:
    """A run folder with a config, one epoch and a status, as training leaves it."""
    run = RunFolder(paths.runs_dir() / run_id)
    run.path.mkdir(parents=True)
    (run.path / "config.json").write_text(json.dumps({"model": model, "epochs": 2, "validation": "split"}))
    run.append_metric({"type": "epoch", "epoch": 1, "loss": 0.5, "val_accuracy": 0.875})
    run.update_status(state=state, started_at="2026-11-24T14:15:30+00:00", **status)
    return run.path


def test_runs_list_is_a_table_with_a_header_date_and_model(workspace, capsys):
    make_run("20261124-141530-compact-demo")
    make_run("20261125-090000-mobilenet-simpsons", model="mobilenet_v3")
    assert main(["runs", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "STARTED", "MODEL", "STATE", "EPOCHS", "ACCURACY"]
    assert len(rows) == 2
    assert "2026-11-24" in rows[0] and "mobilenet_v3" in rows[1] and "1/2" in rows[0]
    assert "best val_accuracy 0.875" in rows[0]
    # Aligned: every column starts at the same offset on every line.
    for column in ("STARTED", "MODEL", "STATE", "EPOCHS", "ACCURACY"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), column


def test_runs_show_latest_shows_the_newest_completed_run(workspace, capsys):
    make_run("20261124-141530-compact-demo")
    make_run("20261125-090000-compact-demo", state="failed")
    assert main(["runs", "show", "latest"]) == 0
    assert capsys.readouterr().out.startswith("Run 20261124-141530-compact-demo: completed")


def test_rename_keeps_the_start_stamp_and_slugs_the_name(workspace, capsys):
    make_run("20261124-141530-compact-demo")
    assert manage.rename_run("20261124-141530-compact-demo", "First Try!") == "20261124-141530-first-try"
    assert main(["runs", "rename", "20261124-141530-first-try", "first try"]) == 0  # same name: same id
    assert "to 20261124-141530-first-try." in capsys.readouterr().out
    assert [p.name for p in paths.runs_dir().iterdir()] == ["20261124-141530-first-try"]


def test_delete_moves_the_run_to_the_trash(workspace, capsys):
    folder = make_run("20261124-141530-compact-demo")
    assert main(["runs", "delete", folder.name]) == 0
    assert "trash" in capsys.readouterr().out
    assert not folder.exists()
    (moved,) = (paths.trash_dir() / "runs").iterdir()
    assert moved.name.startswith(folder.name + "-") and (moved / "config.json").is_file()
    assert moved.parent.parent == workspace / "trash"


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_a_running_run_is_neither_renamed_nor_deleted(workspace, capsys, action):
    folder = make_run("20261124-141530-compact-demo", state="running", **process.process_identity())
    argv = ["runs", action, folder.name] + (["other"] if action == "rename" else [])
    assert main(argv) == 2
    assert "is training" in capsys.readouterr().err
    assert folder.is_dir()


def test_missing_runs_are_reported_not_raised(workspace, capsys):
    assert main(["runs", "delete", "20261124-141530-nope"]) == 2
    assert main(["runs", "rename", "20261124-141530-nope", "x"]) == 2
    assert capsys.readouterr().err.count("There is no run") == 2
