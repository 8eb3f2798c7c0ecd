"""`simpsons demo-data OUT`: draw the demo dataset (cartoon heads, tutorial layout)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from simpsons_core.data.demo import generate_demo_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-data",
        help="draw the demo dataset (no real frames needed)",
        description="Draw cartoon heads of Bart, Homer, Lisa and Marge in the tutorial's folder layout. "
        "The same seed gives byte-identical files.",
    )
    parser.add_argument("out", type=Path, help="a new or empty folder")
    parser.add_argument(
        "--train-per-class", type=int, default=80, help="training images per class (default 80)"
    )
    parser.add_argument("--test-per-class", type=int, default=20, help="test images per class (default 20)")
    parser.add_argument("--size", type=int, default=96, help="image width and height in pixels (default 96)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    out = generate_demo_dataset(args.out, args.train_per_class, args.test_per_class, args.seed, args.size)
    total = 4 * (args.train_per_class + args.test_per_class)
    print(f"Drew {total} images into {out} in {time.perf_counter() - started:.1f} s (tutorial layout).")
    return 0
