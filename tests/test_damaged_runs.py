"""Nothing silently wrong with a damaged or diverged run: a loss that becomes NaN fails the run saying so, a
prediction is never "nan%", a missing or damaged config.json is named and refused (never replaced by defaults
or the demo dataset), a truncated best.keras falls back to an intact model.keras (saying so), non-finite
numbers in metrics.jsonl read as missing, and a launcher killed before its training process started leaves a
failed run, not an unknown one with a temp file beside it.

Real TensorFlow and real files throughout: the runs are copies of the briefly trained `trained_run`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from simpsons_core import paths
from simpsons_core.cli.main import main
from simpsons_core.config import AugmentConfig, TrainConfig
from simpsons_core.inference.evaluate import evaluate
from simpsons_core.inference.predict import NO_PROBABILITIES, Predictor
from simpsons_core.run import launcher, lock
from simpsons_core.run.folder import LAUNCHER_STOPPED, RunFolder
from simpsons_core.run.lookup import read_run, resolve_run, run_dataset
from simpsons_core.run.summary import history_rows, progress_text

pytest_plugins = ["run_fixtures"]

REPO = Path(__file__).resolve().parents[1]
# Every command that uses a run's model refuses a run that cannot be used, before loading anything.
MODEL_COMMANDS = {
    "evaluate": [],
    "predict": ["IMAGE"],
    "explain": ["IMAGE", "-o", "OUT"],
    "export": ["--format", "keras"],
}


@pytest.fixture
def run_copy(workspace: Path, trained_run: Path) -> Path:
    """A copy of the trained run in this test's workspace, which the test may damage."""
    return Path(shutil.copytree(trained_run, paths.runs_dir() / "20260101-000000-tutorial-demo"))


@pytest.fixture(scope="module")
def picture(tiny_dataset: Path) -> Path:
    return sorted((tiny_dataset / "simpson_testset" / "bart_simpson").glob("*.jpg"))[0]


def run_command(
    name: str, run: Path, picture: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> tuple[int, str, str]:
    """`python -m simpsons_core <name> <run> ...` in this process: (exit code, stdout, stderr)."""
    extra = [
        {"IMAGE": str(picture), "OUT": str(tmp_path / "overlay.png")}.get(arg, arg)
        for arg in MODEL_COMMANDS[name]
    ]
    code = main([name, str(run), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# --- 4. NaN: a diverging run fails saying so, and a prediction is never NaN --------------------------------


@pytest.mark.slow
def test_a_run_whose_loss_becomes_nan_fails_saying_so(workspace: Path, tiny_dataset: Path) -> None:
    """A learning rate near float32's limit makes the tutorial network's loss NaN on its second batch
    (checked: at 1e30 the loss stays a finite 1e29 for three epochs)."""
    from simpsons_core.training.trainer import train_in_foreground

    config = TrainConfig(
        data_dir=str(tiny_dataset),
        model="tutorial",
        image_size=32,
        epochs=3,
        batch_size=16,
        learning_rate=1e38,
        lr_schedule="constant",
        validation="test",
    )
    info = train_in_foreground(config, paths.runs_dir() / "diverged")
    assert info.state == "failed"
    assert info.error == "the loss became NaN at epoch 1, step 2: try a lower learning rate"
    again = read_run(info.path)  # what every later reader sees
    assert (again.state, again.error) == ("failed", info.error)
    # Nothing it had is lost; the NaN weights are not saved as a model; the next run may start.
    assert {p.name for p in info.path.iterdir()} >= {
        "config.json",
        "labels.json",
        "metrics.jsonl",
        "status.json",
    }
    assert not (info.path / "model.keras").exists()
    assert again.train_config() == config
    assert lock.lock_holder() is None
    assert not [line for line in again.progress if line["loss"] is None]


def nan_model_run(run: Path) -> Path:
    """The run with its best.keras replaced by the same network whose weights are all NaN."""
    import keras

    model = keras.saving.load_model(run / "best.keras", compile=False)
    model.set_weights([np.full_like(weights, np.nan) for weights in model.get_weights()])
    RunFolder(run).save_model(model, best=True)
    return run


def test_a_model_with_nan_weights_gives_an_error_not_nan_percent(
    run_copy: Path, picture: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = nan_model_run(run_copy)
    predictor = Predictor.from_run(run)
    [result] = predictor.predict([picture])
    assert not result.ok and result.error == NO_PROBABILITIES
    assert result.error == "the model gave no usable probabilities (NaN): retrain it"
    assert (result.probabilities, result.top, result.answer) == ({}, [], f"error: {NO_PROBABILITIES}")
    # A readable picture beside it in a batch gets the same error, and an unreadable one keeps its own.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    both = predictor.predict([picture, broken])
    assert both[0].error == NO_PROBABILITIES and "not an image" in (both[1].error or "")

    code, out, _ = run_command("predict", run, picture, tmp_path, capsys)
    assert code == 1
    assert f"{picture}: error: {NO_PROBABILITIES}" in out and "nan" not in out.lower().replace("(nan)", "")
    with pytest.raises(
        ValueError, match=r"cannot be evaluated: the model gave no usable probabilities \(NaN\)"
    ):
        evaluate(run, "test")


# --- 5. config.json missing or damaged: named, refused, never defaults or the demo dataset -----------------


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (None, "config.json is missing."),
        ('{"model": "tutorial", "image_si', "config.json is damaged (Unterminated string"),
        ("[1, 2]", "config.json does not hold a JSON dict."),
        ("{}", "config.json is damaged: it records no training settings"),
        ("AUGMENT_NONE", "config.json is damaged: augment must be a set of augmentation settings"),
        ("LR_NAN", "config.json is damaged: learning_rate must be a finite number above 0, not nan."),
    ],
)
def test_a_run_with_a_missing_or_damaged_config_is_refused_by_every_command(
    run_copy: Path,
    picture: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    damage: str | None,
    reason: str,
) -> None:
    config_path = run_copy / "config.json"
    saved = json.loads(config_path.read_text())
    if damage is None:
        config_path.unlink()
    elif damage == "AUGMENT_NONE":
        config_path.write_text(json.dumps({**saved, "augment": "none"}))
    elif damage == "LR_NAN":
        config_path.write_text(json.dumps({**saved, "learning_rate": float("nan")}))
    else:
        config_path.write_text(damage)
    before = folder_contents(run_copy)

    info = read_run(run_copy)
    assert info.train_config() is None and info.config_problem is not None
    assert info.config_problem.startswith(reason)
    refusal = f"Run {run_copy.name} cannot be used: {reason}"
    for command in MODEL_COMMANDS:
        code, out, err = run_command(command, run_copy, picture, tmp_path, capsys)
        assert code == 2, (command, out, err)
        assert err.startswith(f"error: {refusal}"), (command, err)
        assert "Traceback" not in err
    for call in (
        lambda: resolve_run(run_copy),
        lambda: run_dataset(info),
        lambda: Predictor.from_run(run_copy),
    ):
        with pytest.raises(ValueError, match="^" + re.escape(refusal)):
            call()
    # Refused without touching anything: no evaluation saved, no export, no demo dataset made to stand in.
    assert folder_contents(run_copy) == before and not (run_copy / "exports").exists()
    assert not (paths.datasets_dir() / "demo").exists()
    assert not (tmp_path / "overlay.png").exists()
    assert main(["runs", "show", run_copy.name]) == 0
    assert f"problem: {reason.split(' (')[0]}" in capsys.readouterr().out


def test_a_config_that_records_no_dataset_is_not_evaluated_on_the_demo_data(run_copy: Path) -> None:
    config_path = run_copy / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["dataset"], saved["data_dir"]
    config_path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=re.escape("config.json does not record the run's dataset")):
        evaluate(run_copy, "test")
    assert not (paths.datasets_dir() / "demo").exists()


def test_a_config_that_disagrees_with_the_model_is_named_before_any_decoding(run_copy: Path) -> None:
    config_path = run_copy / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "image_size": 64}))
    with pytest.raises(
        ValueError, match=re.escape("config.json is damaged: it says image_size 64, but the model takes 32")
    ):
        evaluate(run_copy, "test")


# --- 6. A truncated best.keras: fall back to model.keras, saying so; both damaged: say that --------------


def test_a_truncated_best_model_falls_back_to_the_last_model_saying_so(
    run_copy: Path, picture: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import keras

    truncate(run_copy / "best.keras")
    info = read_run(run_copy)
    assert info.model_path == run_copy / "model.keras"
    assert any(p.startswith("best.keras is damaged (not a complete .keras file") for p in info.problems)
    note = info.model_note
    assert note is not None and note.endswith("Using model.keras (the model after the last epoch) instead.")

    main(["runs", "list"])
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith(run_copy.name))
    assert " completed " in row and "(damaged: see `runs show`)" in row
    main(["runs", "show", run_copy.name])
    shown = capsys.readouterr().out
    assert "model: model.keras" in shown and "problem: best.keras is damaged" in shown

    code, out, err = run_command("predict", run_copy, picture, tmp_path, capsys)
    assert code == 0 and f"warning: {note}" in err
    assert f"{picture}: " in out and "%" in out
    [fallback] = Predictor.from_run(run_copy).predict([picture])
    last = keras.saving.load_model(run_copy / "model.keras", compile=False)
    [expected] = Predictor(last, info.labels, AugmentConfig()).predict([picture])
    assert fallback.ok and fallback.probabilities == pytest.approx(expected.probabilities, abs=1e-6)
    code, out, err = run_command("evaluate", run_copy, picture, tmp_path, capsys)
    assert code == 0 and f"warning: {note}" in err and "accuracy" in out
    code, out, err = run_command("explain", run_copy, picture, tmp_path, capsys)
    assert code == 0 and f"warning: {note}" in err and (tmp_path / "overlay.png").is_file()


@pytest.mark.parametrize("damage", ["truncated", "no weights"])
def test_when_both_saved_models_are_damaged_every_command_says_so(
    run_copy: Path, picture: Path, tmp_path: Path, capsys: pytest.CaptureFixture, damage: str
) -> None:
    import zipfile

    for name in ("best.keras", "model.keras"):
        if damage == "truncated":
            truncate(run_copy / name)
        else:
            with zipfile.ZipFile(run_copy / name, "w") as archive:
                archive.writestr("config.json", "{}")
    info = read_run(run_copy)
    assert info.model_path is None and info.state == "completed"
    assert sum("is damaged" in problem for problem in info.problems) == 2
    refusal = (
        f"Run {run_copy.name} cannot be used: the saved model files are damaged. best.keras is damaged ("
    )
    with pytest.raises(ValueError) as raised:
        resolve_run(run_copy)
    assert str(raised.value).startswith(refusal) and "model.keras is damaged (" in str(raised.value)
    for command in MODEL_COMMANDS:
        code, _, err = run_command(command, run_copy, picture, tmp_path, capsys)
        assert code == 2 and err.startswith(f"error: {refusal}"), (command, err)
        assert "File not found" not in err


# --- 8. Non-finite numbers and extra epochs in metrics.jsonl ------------------------------------------------


def epoch_line(epoch: int, val_accuracy: object, loss: object = 0.5) -> str:
    return f'{{"type": "epoch", "epoch": {epoch}, "loss": {loss}, "val_accuracy": {val_accuracy}}}'


def test_non_finite_metrics_read_as_missing_and_epochs_never_exceed_the_plan(
    workspace: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = paths.runs_dir() / "20260101-000000-odd-metrics"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TrainConfig(epochs=2).to_dict()))
    (folder / "status.json").write_text(
        '{"state": "completed", "epochs": 2, "test_accuracy": Infinity, "eta_seconds": 1e999}'
    )
    lines = [
        epoch_line(1, 0.5),
        epoch_line(2, "NaN", loss="NaN"),
        epoch_line(3, "1e999"),
        epoch_line(4, "-Infinity"),
        epoch_line(5, 0.75),
        '{"type": "progress", "epoch": 1, "step": 1, "steps": 3, "loss": NaN, "accuracy": 0.5, "time": 1}',
    ]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")

    info = read_run(folder)
    assert [line["epoch"] for line in info.epochs] == [1, 2]
    assert info.epochs[1]["val_accuracy"] is None and info.epochs[1]["loss"] is None
    assert info.best_val_accuracy == 0.5
    assert info.progress[0]["loss"] is None and info.progress[0]["accuracy"] == 0.5
    assert info.test_accuracy is None and info.status["eta_seconds"] is None
    assert (
        "metrics.jsonl has NaN or infinite numbers on 4 line(s) (line 2, 3, 4, 6); they read as missing."
        in (info.problems)
    )
    assert "metrics.jsonl has 5 epoch lines for 2 planned epochs; the first 2 are used." in info.problems
    assert "status.json has NaN or infinite numbers; they read as missing." in info.problems

    main(["runs", "list"])
    listing = capsys.readouterr().out
    assert " 2/2 " in listing and "best val_accuracy 0.500" in listing
    assert "inf" not in listing.lower() and "nan" not in listing.lower()
    main(["runs", "show", folder.name])
    shown = capsys.readouterr().out
    assert "epoch 2: loss - accuracy - val_loss - val_accuracy -" in shown
    assert "inf" not in shown.lower().replace("infinite", "")
    [row] = history_rows([info])
    assert (row["epochs"], row["best val accuracy"]) == ("2/2", "50.0%")
    assert progress_text(info)[1].startswith("2 of 2 epochs")


# --- 9. A launcher killed before its training process started ----------------------------------------------


def test_a_launcher_killed_before_the_training_process_started_leaves_a_failed_run(
    workspace: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture
) -> None:
    """The launcher is killed (SIGKILL, as `kill -9`) inside its first status write: after config.json, with
    the status temp file written but not yet renamed, and the lock naming it."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from simpsons_core.config import TrainConfig
        from simpsons_core.run import launcher

        real_replace = os.replace

        def replace(source, target):
            if str(target).endswith("status.json"):
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(source, target)

        os.replace = replace
        launcher.start_run(TrainConfig(data_dir={str(tiny_dataset)!r}, image_size=32, epochs=1))
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    [folder] = [p for p in paths.runs_dir().iterdir() if p.is_dir()]
    [orphan] = [p for p in folder.iterdir() if p.name.startswith(".status.json.") and p.name.endswith(".tmp")]
    assert not (folder / "status.json").exists() and (folder / "config.json").is_file()

    info = read_run(folder)
    assert (info.state, info.error) == ("failed", LAUNCHER_STOPPED)
    assert LAUNCHER_STOPPED == "the launcher stopped before the training process started"
    assert f"status.json is missing: {LAUNCHER_STOPPED}." in info.problems
    assert info.train_config() == TrainConfig(data_dir=str(tiny_dataset), image_size=32, epochs=1)
    assert orphan.exists()  # a minute old at most: it could still be a live writer's
    old = time.time() - 120
    os.utime(orphan, (old, old))
    read_run(folder)
    assert not orphan.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]  # nothing else was removed

    main(["runs", "show", folder.name])
    assert f"error: {LAUNCHER_STOPPED}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="is not running"):
        launcher.cancel_run(folder.name)
    assert lock.lock_holder() is None  # the dead launcher's lock is stale: the next run may start
    lock.release_lock(launcher.begin_run(TrainConfig()).id)


def test_a_run_without_status_whose_launcher_lives_reads_as_running(workspace: Path) -> None:
    run = launcher.begin_run(TrainConfig())  # this process holds the lock, as a launcher does
    try:
        assert read_run(run.path).state == "running"
    finally:
        lock.release_lock(run.id)
    assert read_run(run.path).state == "failed"


def test_stale_temp_files_go_and_fresh_ones_and_other_files_stay(workspace: Path) -> None:
    from simpsons_core import atomic

    folder = paths.runs_dir() / "r1"
    folder.mkdir(parents=True)
    names = [".status.json.abc123.tmp", ".best.4242.tmp.keras", ".hidden-note", "notes.tmp", "status.json"]
    for name in names:
        (folder / name).write_text("{}")
    (folder / ".dir.tmp").mkdir()
    old = time.time() - 2 * atomic.STALE_TEMP_SECONDS
    for path in folder.iterdir():
        os.utime(path, (old, old))
    (folder / ".config.json.fresh.tmp").write_text("{")
    atomic.remove_stale_temp_files(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".config.json.fresh.tmp", ".dir.tmp", ".hidden-note", "notes.tmp", "status.json"]
    )
    assert all(atomic.is_temp_name(atomic.temp_path_for(folder / n).name) for n in ("best.keras", "x.json"))


def test_an_augment_config_from_a_damaged_file_names_the_field() -> None:
    with pytest.raises(ValueError, match="rescale must be a finite number above 0, not inf"):
        AugmentConfig.from_dict({"rescale": float("inf")})
