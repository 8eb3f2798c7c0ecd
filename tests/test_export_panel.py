"""The Export panel's helpers: which exports a run offers (from its manifest, wherever the run folder has
moved since), the in-memory zips a SavedModel folder and "Download all" are served as, and how each check and
the full-integer export's input and output read; and the panel building the full-integer export on the
Evaluate page beside the float TFLite one."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

from page_helpers import assert_clean, open_page

from app_pages.export_panel import MANIFEST, built_exports, check_sentence, full_int8_sentence, zipped
from simpsons_core.inference.export import FULL_INT8

pytest_plugins = ["page_fixtures", "run_fixtures"]

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


def test_the_check_reads_as_a_sentence_with_the_latency_when_measured() -> None:
    assert check_sentence(CHECK) == (
        "2.50 MB, top-1 agreement 100% on 64 images (largest probability difference 3e-07)"
    )
    assert check_sentence({**CHECK, "latency_ms": 2.345}).endswith("difference 3e-07), 2.3 ms per image")


FULL_INT8_ENTRY = {
    **CHECK,
    "size_bytes": 700_000,
    "latency_ms": 1.5,
    "input": "uint8 [1, 64, 64, 3], real = 1 x (q - 0): the pixel values (0-255)",
    "output": "uint8 [1, 4], real = 0.00390625 x (q - 0): softmax probabilities",
    "calibration_images": 300,
}


def test_the_full_integer_export_says_what_it_takes_and_compares_with_the_float_tflite() -> None:
    alone = full_int8_sentence({FULL_INT8: FULL_INT8_ENTRY})
    assert alone == (
        "Takes uint8 [1, 64, 64, 3], real = 1 x (q - 0): the pixel values (0-255). Gives uint8 [1, 4], "
        "real = 0.00390625 x (q - 0): softmax probabilities. Calibrated on 300 images."
    )
    both = full_int8_sentence({FULL_INT8: FULL_INT8_ENTRY, "tflite": {**CHECK, "latency_ms": 4.0}})
    assert both == (
        f"{alone} Against the float tflite: 0.70 MB instead of 2.50 MB, 1.5 ms per image instead of 4.0 ms."
    )


def test_the_panel_builds_the_full_integer_export_beside_the_float_one(workspace_run: Path) -> None:
    at = open_page("evaluate")
    at.button_group(key="export_formats").set_value(["tflite", FULL_INT8]).run()
    at.button(key="export_build").click().run()
    assert_clean(at)
    assert [status.label.split(":")[0] for status in at.status] == ["tflite", FULL_INT8]
    assert all("top-1 agreement" in status.label and "ms per image" in status.label for status in at.status)
    [caption] = [c.value for c in at.caption if c.value.startswith("Takes uint8 [1, 32, 32, 3]")]
    assert "Calibrated on 96 images. Against the float tflite: " in caption
    assert (workspace_run / "exports" / "model-full-int8.tflite").is_file()
    labels = [button.label for button in at.download_button]
    assert labels == ["Download tflite", f"Download {FULL_INT8}", "Download all, with the manifest (.zip)"]
