"""Predict: a trained run classifies uploaded pictures and webcam photos, with a Grad-CAM heatmap of a chosen
class beside each picture on request, and the answers downloadable as the CLI's CSV.

Uploads and the webcam both give Streamlit `UploadedFile`s, which go through one path: `Predictor.predict`,
the same decoding and scaling as training. The model loads once per model file (`st.cache_resource`). Below
the run's "sure" threshold an answer is a warning, "Not sure: maybe X", not a bare label; a caption says what
the threshold delivered on the run's validation images. Results are cards in a grid, the webcam photo's first
(it is the one just taken), each picture at its own size up to SHOWN_SIDE: never enlarged, so never blurred.
"""

from __future__ import annotations

import io

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app_pages.import_panel import import_panel
from app_pages.shared import EXPECTED_ERRORS, active_dataset, pick_completed_run
from simpsons_core.charts import top_classes_figure
from simpsons_core.data.folders import detect_layout
from simpsons_core.data.images import open_rgb
from simpsons_core.inference.explain import explain
from simpsons_core.inference.predict import Prediction, Predictor, csv_text, model_key
from simpsons_core.run.summary import verdict_sentence

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
SHOWN_SIDE = 320
CARDS_PER_ROW = 3
# With the heatmap beside each picture a card needs twice the width.
EXPLAINED_CARDS_PER_ROW = 2
WEBCAM_NAME = "webcam photo"


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


def pictures(uploads: list[UploadedFile], photo: UploadedFile | None) -> list[tuple[str, io.BytesIO]]:
    """(widget key, named bytes) per picture, the webcam photo first. The webcam's file is renamed
    WEBCAM_NAME, so its messages and its CSV row say where it came from."""
    named = [(f"webcam_{photo.file_id}", WEBCAM_NAME, photo)] if photo else []
    named += [(upload.file_id, upload.name, upload) for upload in uploads]
    found = []
    for key, name, upload in named:
        data = io.BytesIO(upload.getvalue())
        data.name = name
        found.append((key, data))
    return found


def error_message(name: str, error: str) -> str:
    """The error as shown: an image error names the file already; the others get its name in front."""
    return error if error.startswith(name) else f"{name}: {error}"


def show(
    key: str, picture: io.BytesIO, prediction: Prediction, predictor: Predictor, explained: bool
) -> None:
    """One result card: the answer, the picture (its Grad-CAM beside it when explained), the top classes."""
    with st.container(border=True):
        name = prediction.source
        if not prediction.ok:
            st.error(error_message(name, prediction.error or ""))
            return
        if prediction.sure is False:
            st.warning(f"Not sure: maybe {prediction.label} ({prediction.confidence:.0%})")
        else:
            st.markdown(f"**{prediction.label}** ({prediction.confidence:.1%})")
        try:
            image = open_rgb(picture.getvalue(), name=name)
        except EXPECTED_ERRORS as error:
            st.warning(f"Cannot show {name}: {error}")
        else:
            image.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
            if explained:
                photo, heatmap = st.columns(2)
                photo.image(image, caption=name)
                with heatmap:
                    show_explanation(key, picture, prediction, predictor)
            else:
                st.image(image, caption=name)
        st.plotly_chart(top_classes_figure(prediction), key=f"top_{key}")


def show_explanation(key: str, picture: io.BytesIO, prediction: Prediction, predictor: Predictor) -> None:
    """Grad-CAM of the class chosen in a select box (the answer by default), sized as the photo beside it."""
    labels = predictor.labels
    chosen = st.selectbox(
        "Grad-CAM of", labels, index=labels.index(prediction.label), key=f"explain_class_{key}"
    )
    try:
        explanation = explain(predictor, picture, chosen, max_side=SHOWN_SIDE)
    except EXPECTED_ERRORS as error:
        st.warning(f"Cannot explain {prediction.source}: {error}")
        return
    st.image(explanation.overlay, caption=f"Grad-CAM: red = what speaks for {chosen}")


st.title("Predict")
import_panel()
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

explained = st.toggle(
    "Explain: overlay the Grad-CAM heatmap on a copy beside each picture", key="predict_explain"
)
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

named = pictures(uploads or [], photo)
if not named:
    st.info(f"Upload pictures or take a photo; this model knows {', '.join(predictor.labels)}.")
    st.stop()
predictions = predictor.predict(picture for _, picture in named)
st.download_button(
    "Download predictions (CSV)",
    csv_text(predictions, predictor.labels).encode(),
    f"{run.id}-predictions.csv",
    "text/csv",
    key="predict_csv",
    on_click="ignore",
    icon=":material/download:",
)
per_row = EXPLAINED_CARDS_PER_ROW if explained else CARDS_PER_ROW
results = list(zip(named, predictions, strict=True))
for start in range(0, len(results), per_row):
    row = results[start : start + per_row]
    for column, ((key, picture), prediction) in zip(st.columns(per_row)[: len(row)], row, strict=True):
        with column:
            show(key, picture, prediction, predictor, explained)
