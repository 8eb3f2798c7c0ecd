"""`export RUN --format keras|savedmodel|tflite|tflite-int8|tflite-full-int8|onnx`: export a run's model and
check it."""

from __future__ import annotations

import argparse
from pathlib import Path

from simpsons_core.inference.export import CHECK_IMAGES, EXPORT_FORMATS, FULL_INT8, spread
from simpsons_core.inference.tflite import CALIBRATION_IMAGES
from simpsons_core.run.lookup import RUN_ARGUMENT_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a run's model (SavedModel, TFLite, full-integer TFLite, ONNX, ...)",
        description=(
            "Write a run's model to <run>/exports/ in the chosen format(s), load each export back and "
            "compare its predictions with the Keras model on real images (top-1 agreement, largest "
            f"probability difference, single-image latency). {FULL_INT8} is integer-only with uint8 pixel "
            "values in and uint8 probabilities out (microcontrollers, Coral); exports/manifest.json gives "
            "its input and output scale and zero point."
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
        help="images to compare predictions on, N spread over the folder (default: the run's dataset, test "
        "split first)",
    )
    parser.add_argument(
        "--check-images",
        type=int,
        default=CHECK_IMAGES,
        metavar="N",
        help=f"images compared (default {CHECK_IMAGES})",
    )
    parser.add_argument(
        "--calibration-data",
        type=Path,
        metavar="DIR",
        help=(
            f"images that calibrate {FULL_INT8}'s activation ranges, like the training images "
            f"(default: {CALIBRATION_IMAGES} of the run's training images)"
        ),
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
    check = calibration = None
    if args.check_data:
        check = spread(image_files([args.check_data]), args.check_images)
    if args.calibration_data:
        calibration = spread(image_files([args.calibration_data]), CALIBRATION_IMAGES)
    for fmt in args.formats:
        result = export_run(
            info.path, fmt, check_images=check, limit=args.check_images, calibration_images=calibration
        )
        print(result.describe())
    return 0
