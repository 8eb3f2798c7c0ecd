"""Every export format, loaded back and compared with the Keras model on real images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from simpsons_core.cli.main import main
from simpsons_core.inference.export import EXPORT_FORMATS, export_run

pytest_plugins = ["run_fixtures"]


@pytest.fixture(scope="module")
def run_copy(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained run, since exports are written into the run folder."""
    return Path(shutil.copytree(trained_run, tmp_path_factory.mktemp("export") / "run"))


@pytest.mark.parametrize(
    ("fmt", "max_difference"),
    [
        ("keras", 0.0),
        ("savedmodel", 1e-5),
        ("tflite", 1e-5),
        ("tflite-int8", 0.05),
        ("onnx", 1e-5),
    ],
)
def test_export_round_trip(run_copy: Path, fmt: str, max_difference: float) -> None:
    result = export_run(run_copy, fmt)
    assert result.path.exists() and result.path.parent == run_copy / "exports"
    assert result.size_bytes > 10_000
    assert result.checked_images == 24  # the tiny dataset's whole test split
    assert result.max_probability_difference <= max_difference
    assert result.top1_agreement >= (0.9 if fmt == "tflite-int8" else 1.0)
    manifest = json.loads((run_copy / "exports" / "manifest.json").read_text())
    assert manifest["exports"][fmt]["size_bytes"] == result.size_bytes
    assert "float32 [N, 32, 32, 3]" in manifest["input"]
    assert not [p for p in (run_copy / "exports").iterdir() if ".tmp" in p.name]


def test_quantised_tflite_is_much_smaller(run_copy: Path) -> None:
    sizes = {fmt: export_run(run_copy, fmt, limit=4).size_bytes for fmt in ("tflite", "tflite-int8")}
    assert sizes["tflite-int8"] < sizes["tflite"] / 3


def test_bad_requests_are_refused(run_copy: Path, tmp_path: Path) -> None:
    assert "onnx" in EXPORT_FORMATS
    with pytest.raises(ValueError, match="Unknown export format 'pt'"):
        export_run(run_copy, "pt")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="No readable images"):
        export_run(run_copy, "keras", check_images=[tmp_path / "notes.txt"])


def test_cli_exports_several_formats_and_prints_sizes(run_copy: Path, tiny_dataset: Path, capsys) -> None:
    data = tiny_dataset / "simpson_testset" / "bart_simpson"
    code = main(
        ["export", str(run_copy), "--format", "keras", "--format", "tflite", "--check-data", str(data)]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["keras", "tflite"]
    assert all(" MB " in line and "top-1 agreement 100.0% on 6 images" in line for line in lines)
