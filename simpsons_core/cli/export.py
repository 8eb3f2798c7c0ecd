"""`export RUN --format keras|savedmodel|tflite|tflite-int8|onnx`: export a run's model and check it."""

from __future__ import annotations

import argparse
from pathlib import Path

from simpsons_core.inference.export import CHECK_IMAGES, EXPORT_FORMATS
from simpsons_core.run.lookup import RUN_ARGUMENT_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a run's model (SavedModel, TFLite, ONNX, ...)",
        description=(
            "Write a run's model to <run>/exports/ in the chosen format(s), load each export back and "
            "compare its predictions with the Keras model on real images (top-1 agreement, largest "
            "probability difference)."
        ),
    )
    parser.add_argument("run", metavar="RUN", help=RUN_ARGUMENT_HELP)
    parser.add_argument(
        "--format",
        dest="formats",
        choices=EXPORT_FORMATS,
        action="append",
        required=True,
        help="repeat for several",
    )
    parser.add_argument(
        "--check-data",
        type=Path,
        metavar="DIR",
        help="images to compare predictions on (default: the run's dataset, test split first)",
    )
    parser.add_argument(
        "--check-images",
        type=int,
        default=CHECK_IMAGES,
        metavar="N",
        help=f"images compared (default {CHECK_IMAGES})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simpsons_core.cli.runs import warn_about_model
    from simpsons_core.inference.export import export_run
    from simpsons_core.inference.predict import image_files
    from simpsons_core.run.lookup import resolve_run
    from simpsons_core.tf_notices import import_tensorflow

    info = resolve_run(args.run)
    import_tensorflow()
    warn_about_model(info)
    check = image_files([args.check_data])[: args.check_images] if args.check_data else None
    for fmt in args.formats:
        print(export_run(info.path, fmt, check_images=check, limit=args.check_images).describe())
    return 0
