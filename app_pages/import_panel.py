"""The Predict page's "Import a model" expander: a Teachable Machine image model (its TensorFlow.js zip, or
its Keras `keras_model.h5` with `labels.txt`) becomes a completed run (`inference.teachable_machine`), which
the page then selects; Evaluate and Export use it as they use a trained run.

It sits above the run picker, so a first visit without any trained run can start from an imported model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app_pages.shared import EXPECTED_ERRORS
from simpsons_core.inference.teachable_machine import import_teachable_machine
from simpsons_core.run.lookup import read_run

UPLOAD_TYPES = ["zip", "json", "bin", "h5", "txt"]
# The Predict page's run picker: an imported run is selected there.
RUN_KEY = "predict_run"


def import_panel() -> None:
    """The expander: files, a name, the Import button; the new run and its classes, or why it failed."""
    with st.expander("Import a model", icon=":material/upload_file:"):
        st.caption(
            "From Teachable Machine (image projects): *Export Model → Tensorflow.js → Download* gives a zip; "
            "*Tensorflow → Keras* gives `keras_model.h5` and `labels.txt` (upload both, or their zip)."
        )
        files = st.file_uploader(
            "Teachable Machine export", type=UPLOAD_TYPES, accept_multiple_files=True, key="import_files"
        )
        name = st.text_input("Name", key="import_name", placeholder="the file's name")
        if st.button("Import", icon=":material/upload:", disabled=not files, key="import_button"):
            import_uploads(files or [], name.strip())


def import_uploads(files: list[UploadedFile], name: str) -> None:
    """Import the uploads (one zip, or an export's loose files), saying what became of them."""
    with tempfile.TemporaryDirectory(prefix="import-") as scratch, st.spinner("Rebuilding the model..."):
        folder = Path(scratch)
        for upload in files:
            (folder / Path(upload.name).name).write_bytes(upload.getvalue())
        zips = [upload.name for upload in files if upload.name.lower().endswith(".zip")]
        source = folder / Path(zips[0]).name if len(files) == 1 and zips else folder
        try:
            run_id = import_teachable_machine(source, name=name or Path(files[0].name).stem)
        except EXPECTED_ERRORS as error:
            st.error(f"Could not import the model: {error}")
            return
    info = read_run(run_id)
    st.session_state[RUN_KEY] = run_id
    st.success(
        f"Imported as run {run_id}, now selected below. Classes: {', '.join(info.labels)}. Input: "
        f"{info.model_input.describe()}."
    )
