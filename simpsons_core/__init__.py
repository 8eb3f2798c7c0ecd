"""Simpsons Studio's core: everything the dashboard does, usable from scripts and the CLI.

This package never imports streamlit. Heavy modules (TensorFlow) are imported by the modules that need
them, so `simpsons scan` stays quick to start.
"""

__version__ = "0.1.0"
