"""What the core raises for bad input: the dashboard and the CLI turn exactly these into a one-line message.

`ImageError` (an unreadable picture) is a ValueError, a missing file or folder an OSError, a busy workspace
(`RunBusyError`) a RuntimeError. Anything else is a bug, reported as one (with its traceback in the terminal).
"""

EXPECTED_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, RuntimeError)
