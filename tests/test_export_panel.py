"""The Export panel's helpers: which exports a run offers (from its manifest, wherever the run folder has
moved since) and the in-memory zips a SavedModel folder and "Download all" are served as."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

from app_pages.export_panel import MANIFEST, built_exports, check_sentence, zipped

CHECK = {
    "size_bytes": 2_500_000,
    "checked_images": 64,
    "top1_agreement": 1.0,
    "max_probability_difference": 3e-7,
}


def run_with_exports(folder: Path, manifest: dict | str) -> SimpleNamespace:
    folder.mkdir(parents=True, exist_ok=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / MANIFEST).write_text(text)
    return SimpleNamespace(folder=SimpleNamespace(exports_dir=folder))


def test_built_exports_are_found_by_name_in_the_current_folder_in_format_order(tmp_path: Path) -> None:
    exports = tmp_path / "run" / "exports"
    run = run_with_exports(
        exports,
        {
            "exports": {
                "tflite": {**CHECK, "path": "/moved/away/exports/model.tflite"},
                "keras": {**CHECK, "path": "/moved/away/exports/model.keras"},
                "onnx": {**CHECK, "path": "/moved/away/exports/model.onnx"},  # deleted since
                "pickle": {**CHECK, "path": "/moved/away/exports/model.pkl"},  # not a format
            }
        },
    )
    for name in ("model.keras", "model.tflite", "model.pkl"):
        (exports / name).write_bytes(b"model")
    found = built_exports(run)
    assert list(found) == ["keras", "tflite"]
    assert found["keras"]["path"] == exports / "model.keras"


def test_a_missing_or_broken_manifest_offers_nothing(tmp_path: Path) -> None:
    assert built_exports(SimpleNamespace(folder=SimpleNamespace(exports_dir=tmp_path / "none"))) == {}
    assert built_exports(run_with_exports(tmp_path / "broken", "{not json")) == {}


def test_zipped_keeps_files_and_folders_under_their_names(tmp_path: Path) -> None:
    saved = tmp_path / "savedmodel"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "variables.index").write_bytes(b"index")
    (tmp_path / "manifest.json").write_text("{}")
    archive = zipfile.ZipFile(io.BytesIO(zipped({MANIFEST: tmp_path / "manifest.json", "savedmodel": saved})))
    assert sorted(archive.namelist()) == [
        "manifest.json",
        "savedmodel/saved_model.pb",
        "savedmodel/variables/variables.index",
    ]
    assert archive.read("savedmodel/variables/variables.index") == b"index"


def test_the_check_reads_as_a_sentence() -> None:
    assert check_sentence(CHECK) == (
        "2.50 MB, top-1 agreement 100% on 64 images (largest probability difference 3e-07)"
    )
