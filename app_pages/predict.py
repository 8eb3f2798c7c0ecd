"""Predict: a trained run classifies uploaded pictures and webcam photos, with a Grad-CAM overlay on request.

Uploads and the webcam both give Streamlit `UploadedFile`s, which go through one path: `Predictor.predict`,
the same decoding and scaling as training. The model loads once per model file (`st.cache_resource`). Below
the run's "sure" threshold an answer is a warning, "Not sure: maybe X", not a bare label; a caption says what
the threshold delivered on the run's validation images.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app_pages.shared import EXPECTED_ERRORS, active_dataset, pick_completed_run
from simpsons_core.charts import top_classes_figure
from simpsons_core.data.folders import detect_layout
from simpsons_core.data.images import open_rgb
from simpsons_core.inference.explain import explain
from simpsons_core.inference.predict import Prediction, Predictor, model_key
from simpsons_core.runs.summary import verdict_sentence

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
SHOWN_SIDE = 320


@st.cache_resource(max_entries=2, show_spinner="Loading the model...")
def load_predictor(run_path: str, model_path: str, modified: float) -> Predictor:
    """One Predictor per model file version, shared by every session; a newly saved model has a new key."""
    return Predictor.from_run(run_path)


def warn_on_label_mismatch(labels: list[str]) -> None:
    try:
        dataset_classes = detect_layout(active_dataset().path).classes
    except ValueError:
        return
    if sorted(labels) != sorted(dataset_classes):
        st.warning(
            f"This model knows {', '.join(labels)}; the active dataset has {', '.join(dataset_classes)}. "
            "Its answers are always one of the classes it knows."
        )


def show(
    name: str, upload: UploadedFile, prediction: Prediction, predictor: Predictor, explained: bool
) -> None:
    with st.container(border=True):
        if not prediction.ok:
            st.error(f"{name}: {prediction.error}")
            return
        picture, chart = st.columns([1, 2])
        with picture:
            try:
                image = explain(predictor, upload).overlay if explained else open_rgb(upload.getvalue())
                image.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
                caption = name + (" (Grad-CAM: red = what decided)" if explained else "")
                st.image(image, caption=caption, width="stretch")
            except EXPECTED_ERRORS as error:
                st.warning(f"Cannot show {name}: {error}")
        with chart:
            if prediction.sure is False:
                st.warning(f"Not sure: maybe {prediction.label} ({prediction.confidence:.0%})")
            else:
                st.markdown(f"**{prediction.label}** ({prediction.confidence:.1%})")
            st.plotly_chart(top_classes_figure(prediction), key=f"top_{upload.file_id}")


st.title("Predict")
run = pick_completed_run("Model", key="predict_run")
if run is None:
    st.stop()
try:
    predictor = load_predictor(str(run.path), *model_key(run))
except EXPECTED_ERRORS as error:
    st.error(f"Run {run.id}'s model cannot be loaded: {error}")
    st.stop()
if note := run.model_note:
    st.warning(note)
warn_on_label_mismatch(predictor.labels)
if calibration := run.calibration:
    st.caption(verdict_sentence(calibration))

explained = st.toggle("Explain: overlay the Grad-CAM heatmap", key="predict_explain")
upload_tab, camera_tab = st.tabs(["Upload pictures", "Webcam"])
with upload_tab:
    uploads = st.file_uploader(
        "Pictures (jpg, png, webp, bmp, gif)",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key="predict_uploads",
    )
with camera_tab:
    photo = st.camera_input("Take a photo", key="predict_camera")

named = [(upload.name, upload) for upload in uploads or []] + ([("Webcam photo", photo)] if photo else [])
if not named:
    st.info(f"Upload pictures or take a photo; this model knows {', '.join(predictor.labels)}.")
predictions = predictor.predict(upload for _, upload in named)
for (name, upload), prediction in zip(named, predictions, strict=True):
    show(name, upload, prediction, predictor, explained)
