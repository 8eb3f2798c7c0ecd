"""The Export panel of a completed run: build its model in the chosen formats, each checked against the
Keras model as it is built (`inference.export.export_run`), then download each export, or all of them in one
zip with the manifest that says what input they take.

What is downloadable comes from `exports/manifest.json`, not from this session, so exports built earlier (or
by the `export` command) are offered too. Files are read, and folders zipped, only when their button is
pressed.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from app_pages.shared import EXPECTED_ERRORS, active_dataset
from simpsons_core.inference.export import CHECK_IMAGES, EXPORT_FORMATS, FULL_INT8, export_run, spread
from simpsons_core.inference.predict import image_files
from simpsons_core.inference.tflite import CALIBRATION_IMAGES
from simpsons_core.run.folder import RunInfo

MANIFEST = "manifest.json"
DEFAULT_FORMATS = ["keras"]
FORMAT_HELP = (
    "keras: the Keras 3 file. savedmodel: TensorFlow Serving (a folder, downloaded as a zip). tflite: LiteRT "
    "for phones; tflite-int8: the same about 4x smaller. tflite-full-int8: integer-only, uint8 pixels in and "
    "uint8 probabilities out, for microcontrollers and Coral boards (calibrated on training images; the "
    "manifest gives its scale and zero point). onnx: ONNX Runtime and other frameworks."
)


def export_panel(run: RunInfo) -> None:
    """Format choice, the Build button with one status box per format, and the downloads."""
    st.subheader("Export the model")
    chosen = st.pills(
        "Formats",
        EXPORT_FORMATS,
        selection_mode="multi",
        default=DEFAULT_FORMATS,
        key="export_formats",
        help=FORMAT_HELP,
    )
    if st.button("Build", icon=":material/build:", disabled=not chosen, key="export_build"):
        build(run, chosen)
    show_downloads(run)


def build(run: RunInfo, formats: Sequence[str]) -> None:
    """Export each format in turn, its progress and check result in its own status box; a format that fails
    says why and the others still build."""
    images = imported_run_images(run)
    for fmt in formats:
        with st.status(f"Building {fmt}...") as status:
            try:
                result = export_run(run.path, fmt, **images)
            except EXPECTED_ERRORS as error:
                status.update(label=f"{fmt}: failed", state="error", expanded=True)
                st.error(f"{fmt} could not be exported: {error}")
                continue
            status.update(label=f"{fmt}: {check_sentence(result.to_dict())}", state="complete")


def imported_run_images(run: RunInfo) -> dict[str, list[Path]]:
    """An imported model has no dataset of its own: it is checked (and full-int8 calibrated) on the active
    dataset's pictures, as the CLI's `--check-data` / `--calibration-data` do; a trained run uses its own."""
    if not run.imported:
        return {}
    pictures = image_files([active_dataset().path])
    return {
        "check_images": spread(pictures, CHECK_IMAGES),
        "calibration_images": spread(pictures, CALIBRATION_IMAGES),
    }


def check_sentence(entry: dict) -> str:
    """An export's size, how faithfully it reproduces the Keras model and its single-image latency (which
    manifests written before it was measured lack), from its manifest entry."""
    latency = f", {entry['latency_ms']:.1f} ms per image" if "latency_ms" in entry else ""
    return (
        f"{entry['size_bytes'] / 1e6:.2f} MB, top-1 agreement {entry['top1_agreement']:.0%} on "
        f"{entry['checked_images']} images (largest probability difference "
        f"{entry['max_probability_difference']:.2g}){latency}"
    )


def full_int8_sentence(built: dict[str, dict]) -> str:
    """What the full-integer export takes and gives, and how it compares with the float TFLite export when
    that is built too."""
    entry = built[FULL_INT8]
    sentence = (
        f"Takes {entry['input']}. Gives {entry['output']}. Calibrated on {entry['calibration_images']} "
        "images."
    )
    if (float_entry := built.get("tflite")) and "latency_ms" in float_entry:
        sentence += (
            f" Against the float tflite: {entry['size_bytes'] / 1e6:.2f} MB instead of "
            f"{float_entry['size_bytes'] / 1e6:.2f} MB, {entry['latency_ms']:.1f} ms per image instead of "
            f"{float_entry['latency_ms']:.1f} ms."
        )
    return sentence


def built_exports(run: RunInfo) -> dict[str, dict]:
    """Format -> manifest entry, for the exports the manifest lists that are still on disk. An entry's path is
    where the export was written; the run folder may have moved since, so only its name is trusted."""
    exports = run.folder.exports_dir
    try:
        manifest = json.loads((exports / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for fmt, entry in manifest.get("exports", {}).items():
        path = exports / Path(entry.get("path", "")).name
        if fmt in EXPORT_FORMATS and path.exists() and path != exports:
            found[fmt] = {**entry, "path": path}
    return dict(sorted(found.items(), key=lambda item: EXPORT_FORMATS.index(item[0])))


def show_downloads(run: RunInfo) -> None:
    built = built_exports(run)
    if not built:
        st.caption("Nothing exported yet: choose formats and press Build.")
        return
    for fmt, entry in built.items():
        path: Path = entry["path"]
        label, button = st.columns([3, 1], vertical_alignment="center")
        label.markdown(f"**{fmt}**: {check_sentence(entry)}")
        if fmt == FULL_INT8:
            label.caption(full_int8_sentence(built))
        with button:
            download(f"Download {fmt}", path, f"{run.id}-{path.name}", key=f"export_download_{fmt}")
    everything = {
        MANIFEST: run.folder.exports_dir / MANIFEST,
        **{e["path"].name: e["path"] for e in built.values()},
    }
    st.download_button(
        "Download all, with the manifest (.zip)",
        data=lambda: zipped(everything),
        file_name=f"{run.id}-exports.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/folder_zip:",
        key="export_download_all",
    )


def download(label: str, path: Path, file_name: str, key: str) -> None:
    """A download button for a file, or for a folder (a SavedModel) zipped in memory."""
    data: Callable[[], bytes]
    if path.is_dir():
        data, file_name, mime = (lambda: zipped({path.name: path})), f"{file_name}.zip", "application/zip"
    else:
        data, mime = path.read_bytes, "application/octet-stream"
    st.download_button(
        label, data, file_name, mime, key, on_click="ignore", icon=":material/download:", width="stretch"
    )


def zipped(entries: dict[str, Path]) -> bytes:
    """A zip of files and folders, each under its name in `entries` (a folder's files below it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in entries.items():
            if path.is_dir():
                for file in sorted(p for p in path.rglob("*") if p.is_file()):
                    archive.write(file, f"{name}/{file.relative_to(path).as_posix()}")
            else:
                archive.write(path, name)
    return buffer.getvalue()
