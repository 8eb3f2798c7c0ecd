"""The dashboard keeps Keras's state between script runs (app_pages/keras_session.py): Streamlit would clear
it, with a full garbage collection, after every run of every page and fragment."""

from __future__ import annotations

import keras
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from app_pages.keras_session import STREAMLIT_CLEANUP, keep_keras_state

SCRIPT = "import streamlit as st\nst.write('a run')"


def names_after_a_script_run() -> tuple[str, str]:
    """The auto-generated name of a layer made before a script run and of one made after: clear_session
    restarts the numbering."""
    before = keras.layers.Dense(1).name
    AppTest.from_string(SCRIPT).run()
    return before, keras.layers.Dense(1).name


def test_streamlit_still_clears_keras_after_each_run_so_the_patch_is_needed() -> None:
    """Fails once Streamlit no longer clears Keras's session: then app_pages/keras_session.py can go. (A page
    run through app.py earlier may have applied the patch: Streamlit's own hook is put back for this run.)"""
    current = script_runner._clean_problem_modules
    try:
        script_runner._clean_problem_modules = STREAMLIT_CLEANUP
        before, after = names_after_a_script_run()
    finally:
        script_runner._clean_problem_modules = current
    assert after == "dense", (before, after)


def test_with_the_patch_a_script_run_leaves_keras_state_alone() -> None:
    original = script_runner._clean_problem_modules
    try:
        keep_keras_state()
        before, after = names_after_a_script_run()
        assert after != "dense" and after != before, (before, after)
    finally:
        script_runner._clean_problem_modules = original
