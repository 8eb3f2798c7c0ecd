"""`simpsons scan DIR`: check a dataset before training (layout, counts, problems, leakage)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from simpsons_core.data.scan import scan_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="check a dataset: layout, counts, sizes, problems, duplicates and test-split leakage",
        description="Detect the dataset's layout and report counts per split and class, image sizes, class "
        "imbalance, problem files, and duplicates within and across splits. Results per file are cached, so "
        "a second scan is near instant.",
    )
    parser.add_argument("dir", type=Path, help="the dataset folder")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "--limit", type=int, default=100, help="lines per list in the text report (default 100; 0 lists all)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with _ProgressBar() as bar:
        report = scan_dataset(args.dir, progress=bar.update)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.to_text(limit=args.limit or None))
    return 0


class _ProgressBar:
    """A tqdm bar on stderr, opened at the first file decoded (a fully cached scan shows none)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, unit="img", desc="Scanning", disable=not sys.stderr.isatty())
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
