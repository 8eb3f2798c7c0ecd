"""`predict RUN PATH... [--csv OUT] [--top-k K]`: classify image files and folders with a trained run.

Below the run's "sure" threshold an image's line starts "not sure (maybe homer_simpson, 41%)"; the first line
says what the threshold delivered on the run's validation images (or why there is none).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify images with a trained run",
        description="Classify image files and folders (searched recursively) with a run's best model.",
    )
    parser.add_argument("run", metavar="RUN", help="run id, run folder, or 'latest' (newest completed run)")
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
    from simpsons_core.inference.predict import Predictor, image_files, write_csv
    from simpsons_core.runs.lookup import resolve_run
    from simpsons_core.runs.summary import verdict_sentence

    files = image_files(args.paths)
    if not files:
        raise ValueError("No image files found in the paths given.")
    info = resolve_run(args.run)
    warn_about_model(info)
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
