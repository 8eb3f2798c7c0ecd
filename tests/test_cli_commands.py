"""The installed `simpsons` command from any folder, without TensorFlow's start-up notices (in the terminal
and in a run's log.txt), and the commands' defaults: train's dataset, explain's output, export's check size,
predict's skipped files and CSV destination."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from simpsons_core.cli.main import build_parser, main
from simpsons_core.inference.explain import MIN_OVERLAY_SIDE
from simpsons_core.inference.export import CHECK_IMAGES
from simpsons_core.run import lookup
from simpsons_core.tf_notices import KNOWN_NOTICES

pytest_plugins = ["run_fixtures"]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "simpsons"


def simpsons(*args: str, cwd: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `simpsons` script, run from `cwd` as a user would (skips the test when not installed)."""
    if not SCRIPT.is_file():
        pytest.skip("the project is not installed in this venv (make run installs it)")
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env={**os.environ, "SIMPSONS_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_no_notices(text: str) -> None:
    for notice in KNOWN_NOTICES:
        assert notice not in text


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder outside the repository to run the command from."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_help_works_from_any_folder(elsewhere: Path, workspace: Path) -> None:
    done = simpsons("--help", cwd=elsewhere, home=workspace)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: simpsons ")


def test_predict_lists_skipped_files_without_tensorflow_notices(
    trained_run: Path, tiny_dataset: Path, elsewhere: Path, workspace: Path
) -> None:
    folder = elsewhere / "mixed"
    folder.mkdir()
    picture = sorted((tiny_dataset / "simpson_testset").rglob("*.jpg"))[0]
    shutil.copy(picture, folder / "bart.jpg")
    for name in ("a.svg", "b.heic", "c.txt", ".DS_Store"):
        (folder / name).write_text("not an image")
    done = simpsons("predict", str(trained_run), str(folder), cwd=elsewhere, home=workspace)
    assert done.returncode == 0, done.stderr
    assert "bart.jpg: " in done.stdout
    # The real warning passes, TensorFlow's notices do not.
    assert "skipped 3 files that are not images: a.svg, b.heic, c.txt" in done.stderr
    assert_no_notices(done.stderr)


def test_predict_refuses_a_csv_folder_before_predicting(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path, capsys
) -> None:
    code = main(["predict", str(trained_run), str(tiny_dataset / "simpson_testset"), "--csv", str(tmp_path)])
    assert code == 2
    assert f"{tmp_path} is a folder; give a file name for the CSV" in capsys.readouterr().err


def test_explain_writes_beside_the_runs_exports_by_default(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path, capsys
) -> None:
    run = shutil.copytree(trained_run, tmp_path / "run")
    picture = sorted((tiny_dataset / "simpson_testset").rglob("*.jpg"))[0]
    assert main(["explain", str(run), str(picture)]) == 0
    out = run / "exports" / f"{picture.stem}-gradcam.png"
    assert str(out) in capsys.readouterr().out
    with Image.open(out) as overlay, Image.open(picture) as original:
        assert min(overlay.size) == MIN_OVERLAY_SIDE
        assert overlay.width / overlay.height == pytest.approx(original.width / original.height, rel=0.02)


def test_export_checks_as_many_images_as_the_readme_says() -> None:
    args = build_parser().parse_args(["export", "latest", "--format", "keras"])
    assert args.check_images == CHECK_IMAGES
    readme = (REPO / "README.md").read_text()
    assert f"checked on {CHECK_IMAGES} test images" in readme
    assert f"{CHECK_IMAGES} by default" in readme


def test_export_tflite_prints_no_xnnpack_notice(trained_run: Path, tmp_path: Path, workspace: Path) -> None:
    run = shutil.copytree(trained_run, tmp_path / "run")
    done = simpsons(
        "export", str(run), "--format", "tflite", "--check-images", "8", cwd=tmp_path, home=workspace
    )
    assert done.returncode == 0, done.stderr
    assert "top-1 agreement" in done.stdout
    assert_no_notices(done.stderr + done.stdout)


@pytest.mark.slow
def test_train_uses_the_dashboards_dataset_and_its_log_has_no_notices(
    tiny_dataset: Path, elsewhere: Path, workspace: Path
) -> None:
    done = simpsons(
        "train", "--model", "tutorial", "--epochs", "1", "--img-size", "32", "--detach",
        cwd=elsewhere, home=workspace, SIMPSONS_DATA=str(tiny_dataset),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"Dataset: {tiny_dataset} (set by the SIMPSONS_DATA environment variable)" in done.stdout
    (info,) = lookup.list_runs()
    assert info.config["data_dir"] == str(tiny_dataset)
    deadline = time.monotonic() + 300
    while lookup.read_run(info.id).state == "running" and time.monotonic() < deadline:
        time.sleep(1)
    assert lookup.read_run(info.id).state == "completed", info.folder.log_path.read_text()
    assert_no_notices(info.folder.log_path.read_text())
