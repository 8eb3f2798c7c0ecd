"""TensorFlow's start-up notices, kept off the terminal and out of each run's log.txt.

TensorFlow 2.21 logs through absl before absl is initialised, and absl then writes every message to stderr
whatever `TF_CPP_MIN_LOG_LEVEL` says: "WARNING: All log messages before absl::InitializeLog() ..." and "oneDNN
custom operations are on ..." once per TensorFlow library (so twice). TFLite's C code prints "INFO: Created
TensorFlow Lite XNNPACK delegate for CPU." No setting turns these off (measured: `TF_CPP_MIN_LOG_LEVEL=2`,
`ABSL_MIN_LOG_LEVEL`, `GLOG_minloglevel`, `TF_ENABLE_ONEDNN_OPTS=1`; `TF_CPP_MIN_LOG_LEVEL=3` would hide
errors too), so file descriptor 2 is captured while they are printed and every other line is written back.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

IMPORT_THREAD = "import-tensorflow"  # the thread's name, which the start-up profile looks for
KNOWN_NOTICES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Created TensorFlow Lite XNNPACK delegate",
    "fully_quantize: ",  # the TFLite converter's settings, printed by every integer conversion
)


@contextmanager
def without_known_notices() -> Iterator[None]:
    """Everything written to stderr (by Python or C) inside the block, less the `KNOWN_NOTICES` lines, is
    written to stderr when the block ends."""
    sys.stderr.flush()
    real_stderr = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(real_stderr, 2)
            os.close(real_stderr)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            if kept := [line for line in lines if not any(notice in line for notice in KNOWN_NOTICES)]:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow() -> None:
    """Import TensorFlow (and Keras) without its start-up notices; commands call it before they need TF."""
    with without_known_notices():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


def import_tensorflow_in_background() -> threading.Thread:
    """`import_tensorflow` in a thread, for the trainer: it finds and decodes images while TensorFlow imports.
    Other stderr lines of that moment come out when the import ends."""
    thread = threading.Thread(target=import_tensorflow, name=IMPORT_THREAD, daemon=True)
    thread.start()
    return thread
