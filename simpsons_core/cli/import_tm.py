"""`import-tm PATH [--name NAME] [--labels FILE]`: a run from a Teachable Machine image model export."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from simpsons_core.inference.teachable_machine import EXPORT_HELP

    parser = subparsers.add_parser(
        "import-tm",
        help="make a run from a Teachable Machine image model (TensorFlow.js or Keras export)",
        description=(
            f"Rebuild {EXPORT_HELP} in Keras 3 and save it as a completed run that predict, evaluate, "
            "explain and export use as they use a trained one, preparing pictures as Teachable Machine does."
        ),
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="the export: a .zip, a folder, or a .h5 file")
    parser.add_argument("--name", help="a readable name for the run (default: the file or folder name)")
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="class names to use instead of the export's (labels.txt lines like '0 Class 1', or one a line)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simpsons_core.inference.teachable_machine import import_teachable_machine
    from simpsons_core.run.lookup import read_run
    from simpsons_core.tf_notices import import_tensorflow

    import_tensorflow()
    info = read_run(import_teachable_machine(args.path, name=args.name, labels=args.labels))
    print(f"Imported {args.path} as run {info.id}")
    print(f"  classes: {', '.join(info.labels)}")
    print(f"  input: {info.model_input.describe()}")
    return 0
