"""Simpsons Studio: the dashboard's entry point (`make run`). One page per step, from data to predictions.

The pages live in `app_pages/`, not `pages/`: Streamlit treats a `pages/` folder as its older multipage layout
on a session's first run, so a page reloaded right after a restart would run without this file.

Everything runs under `if __name__ == "__main__"`: the scan's worker processes re-import the main module when
they start, and must not run the app there.
"""

import importlib
import logging
import threading

import streamlit as st

from app_pages.catalogue import HOME, PAGES
from app_pages.keras_session import keep_keras_state


@st.cache_resource(show_spinner=False)
def warm_up_tensorflow() -> threading.Thread:
    """Import TensorFlow once per server in the background (seconds), while the user reads the first page, so
    the first augmentation preview or prediction does not wait for it."""
    thread = threading.Thread(target=importlib.import_module, args=("tensorflow",), daemon=True)
    thread.start()
    return thread


def main() -> None:
    st.set_page_config(page_title="Simpsons Studio", page_icon="🍩", layout="wide")
    keep_keras_state()
    tensorflow_import = warm_up_tensorflow()
    page = st.navigation(
        [st.Page(entry.path, title=entry.title, icon=entry.icon, default=entry == HOME) for entry in PAGES]
    )
    if page.title != HOME.title:
        # Home never needs TensorFlow and renders at once. Every other page may import it, and two threads
        # importing TensorFlow at once can deadlock on its circular imports, so they wait for the warm-up.
        tensorflow_import.join()
    try:
        page.run()
    except Exception as error:  # a bug, not bad input: say so in words, keep the traceback for the terminal
        logging.getLogger("simpsons_studio").exception("The %s page failed", page.title)
        st.error(
            f"Something went wrong on this page ({type(error).__name__}: {error}). The details are in the "
            "terminal that runs the dashboard; the other pages still work."
        )


if __name__ == "__main__":
    main()
