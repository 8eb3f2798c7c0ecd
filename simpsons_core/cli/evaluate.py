"""`evaluate RUN [--split test|validation | --data DIR]`: accuracy and how far the answers can be trusted
(balanced accuracy, calibration error, confident errors), per-class table and confusion matrix."""

from __future__ import annotations

import argparse
from pathlib import Path

from simpsons_core.inference.evaluate import SPLITS
from simpsons_core.run.lookup import RUN_ARGUMENT_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a run's model on labelled images",
        description=(
            "Accuracy, balanced accuracy, expected calibration error, confident errors, per-class "
            "precision/recall/F1, confusion matrix and the worst mistakes of a run's model; saved as "
            "evaluation-<split>.json in the run folder."
        ),
    )
    parser.add_argument("run", metavar="RUN", help=RUN_ARGUMENT_HELP)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="the dataset's test split (default) or the run's leak-free validation split",
    )
    source.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="evaluate a folder instead: class subfolders, or files labelled by name (bart_simpson_12.jpg)",
    )
    parser.add_argument(
        "--mistakes", type=int, default=10, metavar="N", help="worst mistakes listed (default 10)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from simpsons_core.cli.runs import warn_about_model
    from simpsons_core.inference.evaluate import evaluate
    from simpsons_core.run.lookup import resolve_run
    from simpsons_core.tf_notices import import_tensorflow

    info = resolve_run(args.run)
    import_tensorflow()
    warn_about_model(info)
    bars: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="image", desc="decoding", leave=False))
        bars[0].update(done - bars[0].n)

    try:
        evaluation = evaluate(info.path, split=args.split, data_dir=args.data, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(evaluation.table(mistakes=args.mistakes))
    return 0
