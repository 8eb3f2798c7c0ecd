"""How a training run is steered: the stop request and the cancel exception. Kept free of TensorFlow so that a
training process can use them while TensorFlow is still being imported.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from simpsons_core.run.folder import RunFolder

# The run folder is rewritten at most this often within an epoch: enough for a live curve, and a few ms of
# bookkeeping per second never slows a training step noticeably.
PROGRESS_INTERVAL_SECONDS = 1.0

# Called with every line a run appends to metrics.jsonl, and with {"type": "phase", ...} lines while the data
# is found and decoded (the CLI's progress bar).
RunProgress = Callable[[dict[str, Any]], None]


class RunCancelled(Exception):
    """Raised inside `fit` when a stop was asked for, so training ends after the current batch (without the
    validation pass that `model.stop_training` would still run)."""


class StopRequest:
    """Whether this run was asked to stop: a cancel file in the run folder (`launcher.cancel_run`), or SIGTERM
    or Ctrl-C sent to the process. A second Ctrl-C interrupts at once."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.signalled = False

    def __bool__(self) -> bool:
        return self.signalled or self.run.cancel_requested()

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be installed from the main thread
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, frame: Any) -> None:
            if self.signalled and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.signalled = True

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
