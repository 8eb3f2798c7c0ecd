"""`explain RUN IMAGE [-o OUT.png] [--class NAME]`: a Grad-CAM heatmap of what the model looked at."""

from __future__ import annotations

import argparse
from pathlib import Path

from simpsons_core.run.lookup import RUN_ARGUMENT_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show which part of an image drove the prediction (Grad-CAM)",
        description="Save the image with a Grad-CAM heatmap (red: most important) for the predicted class.",
    )
    parser.add_argument("run", metavar="RUN", help=RUN_ARGUMENT_HELP)
    parser.add_argument("image", metavar="IMAGE", type=Path, help="the image to explain")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT.png",
        help="overlay image to write (default: <IMAGE name>-gradcam.png in the run's exports folder)",
    )
    parser.add_argument("--class", dest="class_name", metavar="NAME", help="explain this class instead")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import io

    from simpsons_core import atomic
    from simpsons_core.cli.runs import warn_about_model
    from simpsons_core.inference.explain import explain
    from simpsons_core.inference.predict import Predictor
    from simpsons_core.run.lookup import resolve_run
    from simpsons_core.tf_notices import import_tensorflow

    info = resolve_run(args.run)
    warn_about_model(info)
    import_tensorflow()
    result = explain(Predictor.from_run(info.path), args.image, args.class_name)
    output = args.output or info.folder.exports_dir / f"{args.image.stem}-gradcam.png"
    buffer = io.BytesIO()
    result.overlay.save(buffer, format=(output.suffix.lstrip(".") or "png").upper().replace("JPG", "JPEG"))
    atomic.write_bytes(output, buffer.getvalue())
    print(
        f"Predicted {result.predicted} ({result.probabilities[result.predicted]:.1%}); "
        f"heatmap for {result.class_name} written to {output}"
    )
    return 0
