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

from app_pages.shared import EXPECTED_ERRORS
from simpsons_core.inference.export import EXPORT_FORMATS, export_run
from simpsons_core.run.folder import RunInfo

MANIFEST = "manifest.json"
DEFAULT_FORMATS = ["keras"]
FORMAT_HELP = (
    "keras: the Keras 3 file. savedmodel: TensorFlow Serving (a folder, downloaded as a zip). tflite: LiteRT "
    "for phones; tflite-int8: the same about 4x smaller. onnx: ONNX Runtime and other frameworks."
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
    for fmt in formats:
        with st.status(f"Building {fmt}...") as status:
            try:
                result = export_run(run.path, fmt)
            except EXPECTED_ERRORS as error:
                status.update(label=f"{fmt}: failed", state="error", expanded=True)
                st.error(f"{fmt} could not be exported: {error}")
                continue
            status.update(label=f"{fmt}: {check_sentence(result.to_dict())}", state="complete")


def check_sentence(entry: dict) -> str:
    """An export's size and how faithfully it reproduces the Keras model, from its manifest entry."""
    return (
        f"{entry['size_bytes'] / 1e6:.2f} MB, top-1 agreement {entry['top1_agreement']:.0%} on "
        f"{entry['checked_images']} images (largest probability difference "
        f"{entry['max_probability_difference']:.2g})"
    )


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
