"""`predict RUN PATH... [--csv OUT] [--top-k K]`: classify image files and folders with a trained run.

Below the run's "sure" threshold an image's line starts "not sure (maybe homer_simpson, 41%)"; the first line
says what the threshold delivered on the run's validation images (or why there is none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simpsons_core.run.lookup import RUN_ARGUMENT_HELP

_SKIPPED_NAMED = 10  # names listed in the "skipped" line; the rest are counted


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify images with a trained run",
        description="Classify image files and folders (searched recursively) with a run's best model.",
    )
    parser.add_argument("run", metavar="RUN", help=RUN_ARGUMENT_HELP)
    parser.add_argument("paths", metavar="PATH", nargs="+", type=Path, help="image files or folders")
    parser.add_argument(
        "--csv", type=Path, metavar="OUT", help="also write one row per image to this CSV file"
    )
    parser.add_argument(
        "--top-k", type=int, default=3, metavar="K", help="classes shown per image (default 3)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from simpsons_core.cli.runs import warn_about_model
    from simpsons_core.inference.predict import Predictor, check_csv_path, image_files, write_csv
    from simpsons_core.run.lookup import resolve_run
    from simpsons_core.run.summary import verdict_sentence
    from simpsons_core.tf_notices import import_tensorflow

    if args.csv:
        check_csv_path(args.csv)
    skipped: list[Path] = []
    files = image_files(args.paths, skipped)
    if skipped:
        print(_skipped_line(skipped), file=sys.stderr)
    if not files:
        raise ValueError("No image files found in the paths given.")
    info = resolve_run(args.run)
    warn_about_model(info)
    import_tensorflow()
    predictor = Predictor.from_run(info.path)
    folders = any(path.is_dir() for path in args.paths)
    with tqdm(total=len(files), unit="image", disable=not folders, leave=False) as bar:
        predictions = predictor.predict(
            files, top_k=args.top_k, progress=lambda done, _: bar.update(done - bar.n)
        )
    if calibration := info.calibration:
        print(verdict_sentence(calibration))
    for p in predictions:
        # The verdict first when it is not the top class itself: "not sure (maybe ...)" or the error.
        verdict = p.answer if p.sure is False or not p.ok else ""
        top = ", ".join(f"{label} {prob:.1%}" for label, prob in p.top)
        print(f"{p.source}: " + "; ".join(part for part in (verdict, top) if part))
    if args.csv:
        write_csv(predictions, predictor.labels, args.csv)
        print(f"Wrote {len(predictions)} rows to {args.csv}")
    return 0 if all(p.ok for p in predictions) else 1


def _skipped_line(skipped: list[Path]) -> str:
    """ "skipped 3 files that are not images: a.svg, b.heic, c.txt" (the first few names, then a count)."""
    names = ", ".join(path.name for path in skipped[:_SKIPPED_NAMED])
    more = f" and {len(skipped) - _SKIPPED_NAMED} more" if len(skipped) > _SKIPPED_NAMED else ""
    files = "file that is not an image" if len(skipped) == 1 else "files that are not images"
    return f"skipped {len(skipped)} {files}: {names}{more}"
