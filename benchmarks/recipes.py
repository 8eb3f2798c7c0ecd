"""`python -m benchmarks.recipes [--data DIR ...] [--eval DIR ...] [--quick]`: the recipes side by side,
honestly scored.

Each recipe trains in a fresh `python -m simpsons_core train` process, exactly as a user would start it, in
a temporary workspace. For every run the table gives the training time, the accuracy on the leak-free
validation split (near-duplicate clusters kept on one side), the accuracy on the dataset's own test split
with how much of it overlaps training, and the per-class recall. Each `--eval DIR` (images the runs never
trained on, e.g. another person's pictures) adds two columns per row: the run's balanced accuracy on them
and its confident errors (wrong answers among those given at >= 90% confidence). Rows:

- `tutorial`: the seed's recipe unchanged; it validates on the test split, so it has no leak-free figure.
- `tutorial on leak-free split`: the same network and augmentation, validated on the leak-free split instead.
- `studio`: the compact CNN trained from scratch.
- `pretrained`: ImageNet's EfficientNet-Lite0 fine-tuned at 128 px (the default); `quick`: a head on its
  frozen features.

More rows change one part of a recipe, to show what that part is worth (`--recipes` picks them):
`studio with tutorial augmentation`, `studio with constant learning rate`, `studio for 12 epochs`,
`studio with tutorial network`, `pretrained at 96 px` and `pretrained with tutorial augmentation`; and
`<recipe> (float32)` / `<recipe> (bfloat16)` train a recipe in one precision (the plain rows use `auto`), so
that time and accuracy of the two show side by side, e.g. `--recipes "pretrained (float32),pretrained
(bfloat16)" --data ../shared/datasets/simpsons4-full --eval ../shared/datasets/simpsons4-dev`.

Times depend on what else the machine runs: the table also gives the training process's CPU seconds and the
load average, and "quiet estimate" is CPU seconds / 1.85, what the run takes when nothing else runs (on a
quiet moment of this 2-core machine, training kept 1.85 cores busy: 44 CPU seconds in a 23.7 s epoch).
The report goes to `benchmarks/reports/<cpu-kind>/recipes.{md,json}` (a `--quick` one to the git-ignored
`benchmarks/scratch/recipes.*`).

Example:

    python -m benchmarks.recipes --data ../shared/datasets/simpsons4-mini
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.report import check_folder, default_folder
from simpsons_core.config import PRECISIONS, RECIPES

if TYPE_CHECKING:
    from simpsons_core.inference.calibration import ConfidentErrors

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared" / "datasets"
DEFAULT_DATA = (SHARED / "simpsons4-full", SHARED / "simpsons4-mini")
REPORT_NAME = "recipes"

# Row name -> (recipe, extra `train` options). The first three rows are the default table.
RECIPE_RUNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tutorial": ("tutorial", ()),
    "tutorial on leak-free split": ("tutorial", ("--validation", "split")),
    "studio": ("studio", ()),
    "studio with tutorial augmentation": ("studio", ("--augment", "tutorial")),
    "studio with constant learning rate": ("studio", ("--lr-schedule", "constant")),
    "studio for 12 epochs": ("studio", ("--epochs", "12")),
    "studio with tutorial network": ("studio", ("--model", "tutorial")),
    "pretrained": ("pretrained", ()),
    "pretrained at 96 px": ("pretrained", ("--img-size", "96")),
    "pretrained with tutorial augmentation": ("pretrained", ("--augment", "tutorial")),
    "quick": ("quick", ()),
    # Each recipe forced to one precision, e.g. "pretrained (float32)" beside "pretrained (bfloat16)": the
    # time bfloat16 saves and what it costs in accuracy, side by side (the plain rows train with "auto").
    **{
        f"{name} ({precision})": (name, ("--precision", precision))
        for name in RECIPES
        for precision in PRECISIONS
        if precision != "auto"
    },
}
DEFAULT_ROWS = ("tutorial", "tutorial on leak-free split", "studio", "pretrained", "quick")
# --quick: a smoke run that checks the whole path in about a minute, not the recipes' accuracy.
QUICK_OPTIONS = ("--epochs", "1", "--img-size", "32")
QUIET_BUSY_CORES = 1.85
FIXED_COLUMNS = (
    "recipe",
    "precision",
    "epochs",
    "training time",
    "whole run (quiet estimate)",
    "leak-free validation accuracy",
    "test-split accuracy",
    "per-class recall",
)
# Each `--eval` folder's columns, after its name.
EVAL_COLUMNS = ("balanced accuracy", "confident errors")


@dataclass
class EvalScore:
    """A row's run evaluated on one `--eval` folder.

    Attributes:
        balanced_accuracy: mean per-class recall on the folder's images; None when the evaluation failed.
        confident_errors: wrong answers among the confident ones; None when the evaluation failed.
        error: why the evaluation failed (e.g. no image of a class the model knows).
    """

    balanced_accuracy: float | None = None
    confident_errors: ConfidentErrors | None = None
    error: str | None = None


@dataclass
class RecipeResult:
    """One training run of one recipe on one dataset, scored.

    Attributes:
        row: the row name (a key of RECIPE_RUNS).
        data: the dataset folder.
        run_id: the run's id in the benchmark's workspace.
        state: the run's final state ("completed" unless something went wrong).
        precision: what the run computed in ("float32" or "bfloat16"; what "auto" resolved to).
        epochs: epochs trained (early stopping may end a run before its planned epochs).
        train_seconds: the epochs' own wall time, summed.
        run_seconds: the whole `train` process, from start to exit (finding, splitting, decoding included).
        cpu_seconds: CPU time of the `train` process.
        load_average: the 1-minute load average when the run started and when it ended.
        validation_accuracy: best accuracy on the leak-free validation split; None when the run validated
            on the test split.
        test_accuracy: accuracy of the best model on the dataset's test split; None when there is none.
        test_overlap: the test split's overlap with training, in the product's words.
        recall: per-class recall on the leak-free validation split (on the test split for `tutorial`).
        evals: `--eval` folder name -> the run's scores on it.
        error: what went wrong, when the run did not complete.
    """

    row: str
    data: str
    run_id: str = ""
    state: str = ""
    precision: str = ""
    epochs: int = 0
    train_seconds: float = 0.0
    run_seconds: float = 0.0
    cpu_seconds: float = 0.0
    load_average: tuple[float, float] = (0.0, 0.0)
    validation_accuracy: float | None = None
    test_accuracy: float | None = None
    test_overlap: str | None = None
    recall: dict[str, float] = field(default_factory=dict)
    evals: dict[str, EvalScore] = field(default_factory=dict)
    error: str | None = None

    @property
    def quiet_estimate_seconds(self) -> float:
        return self.cpu_seconds / QUIET_BUSY_CORES


def train_recipe(row: str, data: Path, quick: bool, evals: Sequence[Path] = ()) -> RecipeResult:
    """Train one row's recipe on `data` in a fresh process (workspace: $SIMPSONS_HOME), then score it, also on
    each folder of `evals`."""
    from simpsons_core.run import lookup

    recipe, options = RECIPE_RUNS[row]
    command = [sys.executable, "-m", "simpsons_core", "train", "--data", str(data), "--recipe", recipe]
    command += [*options, *(QUICK_OPTIONS if quick else ())]
    result = RecipeResult(row=row, data=str(data))
    load_before = os.getloadavg()[0]
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    result.run_seconds = time.perf_counter() - started
    result.cpu_seconds = _children_cpu_seconds() - cpu_before
    result.load_average = (load_before, os.getloadavg()[0])
    first_line = done.stdout.splitlines()[0] if done.stdout else ""
    if not first_line.startswith("Run "):
        result.state, result.error = "failed", (done.stderr or done.stdout).strip()[-2000:]
        return result
    info = lookup.read_run(first_line.split()[1].rstrip(":"))
    result.run_id, result.state, result.error = info.id, info.state, info.error
    result.precision = (info.status.get("precision") or {}).get("precision", "")
    result.epochs = len(info.epochs)
    result.train_seconds = sum(line.get("seconds") or 0.0 for line in info.epochs)
    if info.state == "completed":
        _score(result, info)
        result.evals = {folder.name: eval_score(info.path, folder) for folder in evals}
    return result


def _score(result: RecipeResult, info: Any) -> None:
    """The accuracies as the run recorded them (training scores the best model on the test split at the
    end) and per-class recall from an evaluation of the best model on the run's validation images."""
    from simpsons_core.inference.evaluate import evaluate

    if info.config.get("validation") == "split":
        result.validation_accuracy = info.best_val_accuracy
    result.test_accuracy = info.status.get("test_accuracy")
    result.test_overlap = info.status.get("test_overlap")
    validation = evaluate(info.path, "validation")
    result.recall = {report.name: report.recall for report in validation.classes}


def eval_score(run: Path, folder: Path) -> EvalScore:
    """The run's balanced accuracy and confident errors on `folder` (any layout `evaluate --data` takes); a
    folder the run cannot be evaluated on gives its reason instead of ending the benchmark."""
    from simpsons_core.errors import EXPECTED_ERRORS
    from simpsons_core.inference.evaluate import evaluate

    try:
        trust = evaluate(run, data_dir=folder).trust
    except EXPECTED_ERRORS as error:
        return EvalScore(error=str(error))
    return EvalScore(balanced_accuracy=trust.balanced_accuracy, confident_errors=trust.confident_errors)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def markdown(results: list[RecipeResult]) -> str:
    """One table per dataset; two columns per `--eval` folder after the fixed ones."""
    lines: list[str] = []
    for data in dict.fromkeys(result.data for result in results):
        rows = [r for r in results if r.data == data]
        folders = list(dict.fromkeys(name for r in rows for name in r.evals))
        header = [*FIXED_COLUMNS, *(f"{name} {column}" for name in folders for column in EVAL_COLUMNS)]
        lines += [f"### {data}", "", _table_line(header), _table_line(["---"] * len(header))]
        for result in rows:
            if result.state != "completed":
                cells = [result.row, f"{result.state}: {result.error}"]
                lines.append(_table_line(cells + [""] * (len(header) - len(cells))))
                continue
            loads = "-".join(f"{load:.1f}" for load in result.load_average)
            overlap = f" ({result.test_overlap})" if result.test_overlap else ""
            where = "" if result.validation_accuracy is not None else " (test split)"
            recall = ", ".join(f"{_short(name)} {value:.2f}" for name, value in result.recall.items())
            cells = [
                result.row,
                result.precision or "-",
                str(result.epochs),
                f"{result.train_seconds:.0f} s",
                f"{result.run_seconds:.0f} s, load {loads} ({result.quiet_estimate_seconds:.0f} s)",
                _percent(result.validation_accuracy),
                _percent(result.test_accuracy) + overlap,
                recall + where,
            ]
            for name in folders:
                cells += _eval_cells(result.evals[name])
            lines.append(_table_line(cells))
        lines.append("")
    return "\n".join(lines)


def _table_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _eval_cells(score: EvalScore) -> list[str]:
    """The EVAL_COLUMNS cells of one run on one folder: "93.1%", "9.3% (10 of 107)"."""
    if score.confident_errors is None:
        return [f"failed: {score.error}", "-"]
    errors = score.confident_errors
    rate = errors.rate if errors.answered else None
    return [_percent(score.balanced_accuracy), f"{_percent(rate)} ({errors.wrong} of {errors.answered})"]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _short(class_name: str) -> str:
    return class_name.removesuffix("_simpson")


def write_report(results: list[RecipeResult], meta: dict[str, Any], out: Path) -> tuple[Path, Path]:
    from simpsons_core.atomic import write_json, write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"## Recipes: honest accuracy\n\n{meta['date']}, `{meta['command']}`, {meta['machine']}, "
        f"{meta['versions']}.\n"
        "Training time: the epochs alone; whole run: the `train` process from start to exit, with the load "
        "average at its start and end and, in brackets, its CPU seconds / 1.85 (the time on a quiet 2-core "
        "machine).\n\n"
    )
    text = header + markdown(results)
    markdown_path, json_path = out.with_suffix(".md"), out.with_suffix(".json")
    write_text(markdown_path, text)
    write_json(json_path, {"meta": meta, "results": [asdict(result) for result in results]})
    return markdown_path, json_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.recipes",
        description="Train the tutorial and studio recipes and compare leak-free and test-split accuracy.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        metavar="DIR",
        help="dataset folder; repeat for several (default: the shared simpsons4-full and simpsons4-mini)",
    )
    parser.add_argument(
        "--eval",
        dest="evals",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also evaluate every run on this folder (as `evaluate --data` takes it); repeat for several",
    )
    parser.add_argument(
        "--recipes",
        default=",".join(DEFAULT_ROWS),
        help=f"comma-separated rows to train, from: {', '.join(RECIPE_RUNS)} "
        f"(default: {', '.join(DEFAULT_ROWS)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 epoch at 32 px (on generated demo images when no --data is given)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"report path without suffix (default: benchmarks/reports/<cpu-kind>/{REPORT_NAME}, with "
        f"--quick benchmarks/scratch/{REPORT_NAME})",
    )
    args = parser.parse_args(argv)
    args.out = args.out or default_folder(args.quick) / REPORT_NAME
    try:
        check_folder(args.out, args.quick)
    except ValueError as error:
        parser.error(str(error))
    args.rows = [row.strip() for row in args.recipes.split(",") if row.strip()]
    unknown = [row for row in args.rows if row not in RECIPE_RUNS]
    if unknown:
        parser.error(f"unknown recipe row(s) {', '.join(unknown)}; choose from {', '.join(RECIPE_RUNS)}")
    missing = [folder for folder in [*(args.data or ()), *args.evals] if not folder.is_dir()]
    if missing:
        parser.error(f"no dataset folder {', '.join(map(str, missing))}")
    args.evals = [folder.resolve() for folder in args.evals]
    names = [folder.name for folder in args.evals]
    if len(set(names)) < len(names):
        parser.error(f"--eval folders need different names (they name the columns): {', '.join(names)}")
    return args


@contextmanager
def private_workspace() -> Iterator[Path]:
    """A temporary folder whose `workspace/` is $SIMPSONS_HOME (for this process and the runs it starts)
    while the block runs: the benchmark never touches the user's runs, and its first run finds cold caches."""
    previous = os.environ.get("SIMPSONS_HOME")
    with tempfile.TemporaryDirectory(prefix="simpsons-recipes-") as workdir:
        os.environ["SIMPSONS_HOME"] = str(Path(workdir) / "workspace")
        try:
            yield Path(workdir)
        finally:
            if previous is None:
                os.environ.pop("SIMPSONS_HOME", None)
            else:
                os.environ["SIMPSONS_HOME"] = previous


def main(argv: list[str] | None = None) -> int:
    from benchmarks.hardware import cpu_description

    args = parse_args(argv)
    with private_workspace() as workdir:
        datasets = args.data or [folder for folder in DEFAULT_DATA if folder.is_dir()]
        if not datasets or (args.quick and not args.data):
            from simpsons_core.data.demo import generate_demo_dataset

            datasets = [generate_demo_dataset(workdir / "demo", train_per_class=30, test_per_class=6)]
        results = []
        for data in datasets:
            for row in args.rows:
                print(f"Training {row} on {data}...", file=sys.stderr, flush=True)
                results.append(train_recipe(row, data.resolve(), args.quick, args.evals))
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.recipes " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": cpu_description(),
        "versions": _versions(),
        "quick": args.quick,
    }
    markdown_path, _ = write_report(results, meta, args.out)
    print(markdown(results))
    print(f"Report: {markdown_path}", file=sys.stderr)
    return 0 if all(result.state == "completed" for result in results) else 1


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("tensorflow", "keras"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


if __name__ == "__main__":
    raise SystemExit(main())
