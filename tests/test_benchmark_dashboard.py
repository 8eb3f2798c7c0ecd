"""The benchmark's dashboard section: a workspace filled with hard-linked copies of its runs, a clear note
without Chromium, and (in a real browser, outside CI: minutes on 2 cores) a run from the Train page against
the same run from the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import dashboard
from benchmarks.context import Context


def test_a_full_workspace_is_made_of_hard_linked_copies_of_its_runs(tmp_path: Path) -> None:
    home = tmp_path / "workspace"
    assert dashboard.fill_workspace(home, 5) == 0  # nothing to copy yet
    for run_id in ("20261201-040000-compact-data", "20261201-040100-compact-data"):
        (home / "runs" / run_id).mkdir(parents=True)
        (home / "runs" / run_id / "status.json").write_text('{"state": "completed"}')
    (home / "runs" / ".training.lock").mkdir()  # hidden entries are not runs

    assert dashboard.fill_workspace(home, 5) == 5

    runs = sorted(p.name for p in (home / "runs").iterdir() if not p.name.startswith("."))
    assert runs == [
        "20261201-040000-compact-data",
        "20261201-040000-compact-data-copy000",
        "20261201-040000-compact-data-copy002",
        "20261201-040100-compact-data",
        "20261201-040100-compact-data-copy001",
    ]
    original = home / "runs" / runs[0] / "status.json"
    assert os.path.samefile(original, home / "runs" / runs[1] / "status.json")
    assert dashboard.fill_workspace(home, 3) == 5  # never removes a run


def test_without_chromium_the_section_says_so_and_measures_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard, "CHROMIUM", tmp_path / "no-chromium")
    section = dashboard.run(Context(quick=True, repeats=1, workdir=tmp_path))
    assert not section.tables and not section.targets and not section.error
    [note] = section.notes
    assert note.startswith(f"Skipped: Debian's Chromium ({tmp_path / 'no-chromium'}) is not installed")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not dashboard.CHROMIUM.exists(), reason="Debian's chromium is not installed")
@pytest.mark.skipif(os.environ.get("CI") == "true", reason="minutes of training and browsing; run it locally")
def test_a_run_from_the_train_page_is_timed_against_the_same_run_from_the_cli(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMPSONS_BENCH_DATA", str(tiny_dataset))
    section = dashboard.run(Context(quick=True, repeats=1, workdir=tmp_path))

    assert not section.error
    runs, idle = section.tables
    by_start = {row[0]: row for row in runs.rows}
    for start in ("Train page, tab open", "CLI"):
        train_seconds, run_seconds = by_start[start][1:3]
        assert 0 < train_seconds <= run_seconds + 1  # status.json keeps whole seconds
    assert by_start["Train page, tab open"][3] > 0  # the server's CPU seconds during the run
    ratio, idle_cores = section.targets
    assert ratio.measured == pytest.approx(by_start["CLI"][1] / by_start["Train page, tab open"][1])
    assert idle_cores.measured >= 0 and idle_cores.higher_is_better is False
    assert [row[0] for row in idle.rows] == list(dashboard.WATCHERS)
    assert all(row[4] > dashboard.RUNS_IN_FULL_WORKSPACE for row in idle.rows)  # folders in the workspace
    assert not list(dashboard.SCRATCH.glob("dashboard-*"))  # its workspace is gone
