"""Run folders without training: the one-run lock, run ids, and reading damaged or abandoned folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from simpsons_core import paths
from simpsons_core.config import TrainConfig
from simpsons_core.run import launcher, lock, lookup, process
from simpsons_core.run.folder import UNEXPECTED_END, RunFolder

REPO = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(record: dict) -> None:
    (paths.runs_dir() / lock.LOCK_FILE).write_text(json.dumps(record))


def make_run(run_id: str, **files: str | bytes) -> Path:
    """A run folder holding the given files (name with dots as underscores: status_json=...)."""
    folder = paths.runs_dir() / run_id
    folder.mkdir(parents=True)
    for name, content in files.items():
        path = folder / name.replace("_", ".", 1)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def test_a_second_start_is_refused_naming_the_running_run(workspace):
    first = launcher.begin_run(TrainConfig(model="tutorial")).id
    with pytest.raises(RuntimeError, match=f"Run {first} is training"):
        launcher.begin_run(TrainConfig())
    assert [p.name for p in paths.runs_dir().iterdir() if p.is_dir()] == [first]
    lock.release_lock(first)
    second = launcher.begin_run(TrainConfig()).id
    assert second != first and second.endswith("-compact-demo")


def test_two_starts_at_the_same_instant_from_threads_make_one_run(workspace):
    barrier = threading.Barrier(6)
    started, refused = [], []

    def start() -> None:
        barrier.wait()
        try:
            started.append(launcher.begin_run(TrainConfig()).id)
        except lock.RunBusyError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1 and len(refused) == 5
    assert all(started[0] in message for message in refused)
    assert [p.name for p in paths.runs_dir().iterdir() if p.is_dir()] == started


def test_two_starts_at_the_same_instant_from_processes_make_one_run(workspace, tmp_path):
    """Several processes meet at a barrier (files in a folder), all try to start a run, and stay alive until
    all have tried, so no lock is left by a process that already exited."""
    count = 4
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from simpsons_core.run import launcher, lock, lookup, process
        from simpsons_core.run.folder import UNEXPECTED_END, RunFolder
        from simpsons_core.config import TrainConfig

        def meet(name):
            Path({str(tmp_path)!r}, f"{{name}}-{{os.getpid()}}").touch()
            while len(list(Path({str(tmp_path)!r}).glob(name + "-*"))) < {count}:
                time.sleep(0.001)

        meet("ready")
        try:
            print("started", launcher.begin_run(TrainConfig()).id, flush=True)
        except lock.RunBusyError as error:
            print("refused", error, flush=True)
        meet("done")
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert sum(out.startswith("started") for out in outputs) == 1, outputs
    assert sum(out.startswith("refused") for out in outputs) == count - 1, outputs
    assert len([p for p in paths.runs_dir().iterdir() if p.is_dir()]) == 1


def test_a_lock_left_by_a_dead_process_is_taken_over(workspace):
    write_lock({"run_id": "20260101-000000-old", "pid": dead_pid(), "process_started": 1.0})
    assert lock.lock_holder() is None
    run_id = launcher.begin_run(TrainConfig()).id
    assert lock.lock_holder()["run_id"] == run_id
    assert lock.lock_holder()["pid"] == os.getpid()


def test_a_lock_whose_pid_was_reused_by_another_process_is_taken_over(workspace):
    """Our own pid is alive, but it was not running when the lock was taken: a recycled pid."""
    write_lock({"run_id": "20260101-000000-old", "pid": os.getpid(), "process_started": 1000.0})
    run_id = launcher.begin_run(TrainConfig()).id
    assert lock.lock_holder()["run_id"] == run_id


def test_a_damaged_lock_file_is_taken_over(workspace):
    (paths.runs_dir() / lock.LOCK_FILE).write_bytes(b'{"run_id": "x", "pi')
    assert launcher.begin_run(TrainConfig()).id


def test_run_ids_sort_by_start_time_and_name_the_model_and_data(workspace, tmp_path):
    from datetime import datetime

    config = TrainConfig(data_dir=str(tmp_path / "My Frames!"), model="tutorial")
    early = launcher.new_run_id(launcher.run_name(config), datetime(2026, 11, 24, 14, 15, 30))
    assert early == "20261124-141530-tutorial-my-frames"
    assert launcher.new_run_id("compact demo", datetime(2026, 11, 24, 9, 0, 0)) < early
    (paths.runs_dir() / early).mkdir()
    assert launcher.new_run_id(launcher.run_name(config), datetime(2026, 11, 24, 14, 15, 30)) == early + "-2"


@pytest.mark.parametrize("bad", ["../elsewhere", "a/b", ".lock", ""])
def test_run_dir_refuses_anything_but_a_run_id(workspace, bad):
    with pytest.raises(ValueError, match="is not a run id"):
        lookup.run_dir(bad)


def test_a_run_marked_running_whose_process_died_reads_as_failed(workspace):
    metrics = json.dumps({"type": "epoch", "epoch": 1, "loss": 1.2, "val_accuracy": 0.5}) + "\n"
    status = {"state": "running", "run_id": "r1", "pid": dead_pid(), "process_started": time.time() - 5}
    make_run("r1", status_json=json.dumps(status), config_json="{}", metrics_jsonl=metrics)
    info = lookup.read_run("r1")
    assert info.state == "failed"
    assert info.error == UNEXPECTED_END == "the training process ended unexpectedly"
    assert info.epochs[0]["loss"] == 1.2 and info.best_val_accuracy == 0.5
    with pytest.raises(ValueError, match="is not running"):
        launcher.cancel_run("r1")


def test_damaged_run_folders_are_read_with_their_problems_listed(workspace):
    good_line = json.dumps({"type": "epoch", "epoch": 1, "loss": 1.0, "val_accuracy": 0.4})
    make_run("a-empty")
    make_run("b-corrupt", status_json='{"state": "compl', config_json="[1, 2]", labels_json="{}")
    make_run(
        "c-truncated",
        status_json=json.dumps({"state": "completed"}),
        config_json=json.dumps(TrainConfig().to_dict()),
        metrics_jsonl=good_line + "\n" + good_line[:17],
    )
    make_run("d-binary", status_json=b"\xff\xfe\x00garbage", metrics_jsonl=b"\x00\x01\n")
    make_run("e-odd-state", status_json=json.dumps({"state": "exploded"}))
    odd_values = {"type": "epoch", "epoch": "one", "loss": None, "val_accuracy": "high"}
    make_run(
        "f-odd-values",
        status_json=json.dumps({"state": "running", "pid": "1234", "eta_seconds": "soon"}),
        config_json=json.dumps({"dataset": [1], "epochs": "ten"}),
        metrics_jsonl=json.dumps(odd_values) + "\n" + json.dumps([1, 2]) + "\n",
    )
    (paths.runs_dir() / "stray-file.txt").write_text("not a run")

    infos = {info.id: info for info in lookup.list_runs()}
    assert list(infos) == ["a-empty", "b-corrupt", "c-truncated", "d-binary", "e-odd-state", "f-odd-values"]
    assert infos["a-empty"].state == "unknown"
    assert any("config.json is missing" in p for p in infos["a-empty"].problems)
    assert any("status.json is missing or damaged" in p for p in infos["a-empty"].problems)
    corrupt = infos["b-corrupt"]
    assert corrupt.state == "unknown" and corrupt.config == {} and corrupt.labels == []
    assert any("status.json is damaged" in p for p in corrupt.problems)
    assert any("config.json does not hold a JSON dict" in p for p in corrupt.problems)
    truncated = infos["c-truncated"]
    assert truncated.state == "completed" and len(truncated.epochs) == 1
    assert truncated.problems == ["metrics.jsonl has 1 unreadable line(s) (line 2)."]
    assert truncated.train_config() == TrainConfig()
    assert infos["d-binary"].state == "unknown" and infos["d-binary"].problems
    assert infos["e-odd-state"].state == "unknown"
    odd = infos["f-odd-values"]
    assert odd.state == "failed" and odd.best_val_accuracy is None and len(odd.epochs) == 1
    assert odd.train_config() is None
    assert any("1 unreadable line(s) (line 2)" in p for p in odd.problems)
    for run_id in infos:  # the CLI shows every one of them without crashing
        shown = subprocess.run(
            [sys.executable, "-m", "simpsons_core", "runs", "show", run_id],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0 and shown.stdout.startswith(f"Run {run_id}: "), shown.stderr
    assert lookup.read_run("no-such-run").problems == [
        f"The run folder {paths.runs_dir() / 'no-such-run'} does not exist."
    ]


def test_cancel_writes_a_request_the_training_loop_can_see(workspace):
    status = {"state": "running", **process.process_identity()}
    folder = make_run("live", status_json=json.dumps(status), config_json="{}")
    assert not RunFolder(folder).cancel_requested()
    launcher.cancel_run("live")
    assert RunFolder(folder).cancel_requested()
    with pytest.raises(FileNotFoundError, match="no run"):
        launcher.cancel_run("missing")


def test_runs_cli_lists_shows_and_reports_damage(workspace):
    status = {"state": "completed", "epochs": 2}
    line = json.dumps(
        {
            "type": "epoch",
            "epoch": 1,
            "loss": 0.9,
            "accuracy": 0.6,
            "val_loss": 1.0,
            "val_accuracy": 0.55,
            "lr": 0.001,
            "seconds": 3.2,
        }
    )
    make_run(
        "20260101-000000-compact-demo",
        status_json=json.dumps(status),
        metrics_jsonl=line + "\n",
        config_json=json.dumps(TrainConfig().to_dict()),
        labels_json='["a", "b"]',
    )
    make_run("20260102-000000-broken", status_json="{")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "simpsons_core", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    listing = cli("runs", "list")
    assert listing.returncode == 0
    _header, first, second = listing.stdout.splitlines()
    assert first.split()[:4] == ["20260101-000000-compact-demo", "?", "compact", "completed"]
    assert "best val_accuracy 0.550" in first
    assert second.split()[0] == "20260102-000000-broken" and " unknown " in second and "damaged" in second
    shown = cli("runs", "show", "20260101-000000-compact-demo")
    assert "epoch 1: loss 0.9000 accuracy 0.6000 val_loss 1.0000 val_accuracy 0.5500 (3.2 s)" in shown.stdout
    assert "problem: status.json is damaged" in cli("runs", "show", "20260102-000000-broken").stdout
    assert json.loads(cli("runs", "show", "20260101-000000-compact-demo", "--json").stdout)["labels"] == [
        "a",
        "b",
    ]
    missing = cli("runs", "show", "nope")
    assert missing.returncode == 2 and "No run 'nope'" in missing.stderr
    refused = cli("runs", "cancel", "20260101-000000-compact-demo")
    assert refused.returncode == 2 and "is not running (it is completed)" in refused.stderr
