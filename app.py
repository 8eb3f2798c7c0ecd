"""Simpsons Studio: the dashboard's entry point (`make run`). One page per step, from data to predictions.

The pages live in `app_pages/`, not `pages/`: Streamlit treats a `pages/` folder as its older multipage layout
on a session's first run, so a page reloaded right after a restart would run without this file.
"""

import importlib
import logging
import threading

import streamlit as st

st.set_page_config(page_title="Simpsons Studio", page_icon="🍩", layout="wide")


@st.cache_resource(show_spinner=False)
def warm_up_tensorflow() -> threading.Thread:
    """Import TensorFlow once per server in the background (seconds), while the user reads the first page, so
    the first augmentation preview or prediction does not wait for it."""
    thread = threading.Thread(target=importlib.import_module, args=("tensorflow",), daemon=True)
    thread.start()
    return thread


warm_up_tensorflow()

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("app_pages/augmentation.py", title="Augmentation", icon=":material/tune:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/image_search:"),
]

page = st.navigation(PAGES)
try:
    page.run()
except Exception as error:  # a bug, not bad input: say so in words, keep the traceback for the terminal
    logging.getLogger("simpsons_studio").exception("The %s page failed", page.title)
    st.error(
        f"Something went wrong on this page ({type(error).__name__}: {error}). The details are in the "
        "terminal that runs the dashboard; the other pages still work."
    )
