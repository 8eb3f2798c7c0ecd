"""`python -m benchmarks [--quick] [--only NAME,...]`: run the sections, print tables, write the report.

A full run writes `benchmarks/reports/<cpu-kind>/latest.{md,json}` (the kind from `simpsons_core.cpu`), so
each kind of machine keeps its latest report; `--quick` writes to the git-ignored `benchmarks/scratch/`.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.context import Context
from benchmarks.report import Section, check_folder, default_folder, render, write_report

SECTIONS = {
    "hardware": "benchmarks.hardware",
    "pipelines": "benchmarks.input_pipelines",
    "levers": "benchmarks.levers",
    "prediction": "benchmarks.prediction",
    "scanning": "benchmarks.scanning",
    "first_progress": "benchmarks.first_progress",
    "precision": "benchmarks.precision",
    "dashboard": "benchmarks.dashboard",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure training, prediction and scanning speed side by side; write "
        "reports/<cpu-kind>/latest.* (a quick run: scratch/latest.*)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: tiny data, one repeat (about 2 minutes)"
    )
    parser.add_argument(
        "--only",
        "--sections",
        default="",
        help=f"comma-separated sections to run, from: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--repeats", type=int, default=0, help="repeats per comparison (default 3, quick 1)")
    parser.add_argument(
        "--out",
        type=Path,
        help="report folder (default: benchmarks/reports/<cpu-kind>/, with --quick benchmarks/scratch/)",
    )
    args = parser.parse_args(argv)
    args.sections = [name.strip() for name in args.only.split(",") if name.strip()] or list(SECTIONS)
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.out = args.out or default_folder(args.quick)
    try:
        check_folder(args.out, args.quick)
    except ValueError as error:
        parser.error(str(error))
    return args


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def installed(*names: str) -> str:
        for name in names:
            try:
                return version(name)
            except PackageNotFoundError:
                continue
        return "?"

    return (
        f"Python {platform.python_version()}, TensorFlow {installed('tensorflow-cpu', 'tensorflow')}, "
        f"Keras {installed('keras')}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from benchmarks.hardware import cpu_description
    from simpsons_core.cpu import cpu_kind

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="simpsons-bench-"))
    ctx = Context(quick=args.quick, repeats=args.repeats, workdir=workdir)
    sections: list[Section] = []
    try:
        for name in args.sections:
            print(f"== {name}", flush=True)
            section_started = time.perf_counter()
            try:
                section = importlib.import_module(SECTIONS[name]).run(ctx)
            except Exception as error:  # one broken section must not lose the others' figures
                section = Section(name, name, error=f"{type(error).__name__}: {error}")
            section.seconds = time.perf_counter() - section_started
            sections.append(section)
            print(section.markdown(len(sections)), "\n", flush=True)
        meta = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": cpu_description(),
            "cpu_kind": cpu_kind(),
            "versions": versions(),
            "data": ctx._data.origin if ctx._data else "not needed",
            "repeats": args.repeats,
            "quick": args.quick,
            "seconds": time.perf_counter() - started,
        }
        markdown, data = write_report(sections, meta, args.out)
        print(render(sections, meta).split("## 1.")[0])
        print(f"report: {markdown} and {data} ({meta['seconds']:.0f} s)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
