"""`simpsons COMMAND ...` (or `python -m simpsons_core COMMAND ...`): everything the dashboard can do, from a
terminal. `simpsons` is the console script that installing the project (`make run`) puts in `.venv/bin`.

Each command lives in its own module under `simpsons_core.cli` with two functions:
`register(subparsers)` adds its parser (and `set_defaults(handler=run)`), and `run(args) -> int` does the
work. Command modules import TensorFlow inside `run` (through `tf_notices.import_tensorflow`, which keeps its
start-up notices off the terminal), so `--help` and `scan` start quickly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from simpsons_core import __version__
from simpsons_core.errors import EXPECTED_ERRORS

COMMAND_MODULES = (
    "demo",
    "scan",
    "data",
    "train",
    "runs",
    "predict",
    "evaluate",
    "explain",
    "export",
    "import_weights",
    "import_tm",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simpsons",
        description="Simpsons Studio: scan a folder of labelled images, train a Keras classifier, use it.",
    )
    parser.add_argument("--version", action="version", version=f"simpsons-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"simpsons_core.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's INFO lines are not for users; what absl prints before it is set up, `tf_notices` filters.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except EXPECTED_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0  # the reader went away (`... | head`): nothing left to say
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
