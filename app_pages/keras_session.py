"""Keep Keras's state across script runs: Streamlit clears it after every run, which costs a core.

After every script run, fragment reruns included, Streamlit's script runner calls `_clean_problem_modules`,
which calls `keras.backend.clear_session()` once Keras is imported: a full `gc.collect()` of a process that
holds TensorFlow, and TensorFlow's kernel cache thrown away. With the Train page's live panel rerunning every
second that was 0.45 of a core for one idle tab, taken from the training process beside it
(benchmarks/dashboard.py measures it). This app keeps its models in `st.cache_resource` on purpose and never
uses matplotlib, the other module that function resets, so the dashboard replaces it with one that does
nothing. Streamlit 1.67's `streamlit/runtime/scriptrunner/script_runner.py`; tests/test_keras_session.py
fails if Streamlit stops calling it, so this module can go then.
"""

from __future__ import annotations

from streamlit.runtime.scriptrunner import script_runner

STREAMLIT_CLEANUP = (
    script_runner._clean_problem_modules
)  # Streamlit's own, kept for tests/test_keras_session.py


def _keep_state() -> None:
    """Nothing to clean: Keras's state is the app's cache, and matplotlib is never imported."""


def keep_keras_state() -> None:
    """Stop Streamlit from clearing Keras's session after each script run (idempotent)."""
    script_runner._clean_problem_modules = _keep_state  # the one private hook: see the docstring
