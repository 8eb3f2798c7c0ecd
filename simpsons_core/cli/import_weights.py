"""`import-weights FILE --labels a,b,c,d [--name NAME]`: a run from the tutorial's simpsons_weights.h5."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-weights",
        help="make a run from the tutorial's Keras 2 simpsons_weights.h5",
        description=(
            "Read Keras 2 HDF5 weights of the tutorial's network and save them as a completed run (recipe "
            "tutorial) that evaluate, predict, explain and export can use."
        ),
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="the .h5 weights file")
    parser.add_argument(
        "--labels",
        required=True,
        help="class names in output order, comma-separated; the tutorial's were its folder names in "
        "alphabetical order: bart_simpson,homer_simpson,lisa_simpson,marge_simpson",
    )
    parser.add_argument("--name", help="a readable name for the run (default: the file name)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simpsons_core.inference.import_weights import import_weights, parse_labels
    from simpsons_core.tf_notices import import_tensorflow

    import_tensorflow()
    run_id = import_weights(args.file, parse_labels(args.labels), name=args.name)
    print(f"Imported {args.file} as run {run_id}")
    return 0
