"""`runs list`, `runs show ID`, `runs cancel ID`, `runs rename ID NAME`, `runs delete ID`: the training
runs of the workspace."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from simpsons_core.run.summary import calibration_line, honest_accuracy, started_text

if TYPE_CHECKING:
    from simpsons_core.run.folder import RunInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list, inspect, cancel, rename or delete training runs",
        description="The training runs of the workspace ($SIMPSONS_HOME/runs), oldest first.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="a table: id, start, model, state, epochs, accuracy")
    show = actions.add_parser("show", help="a run's settings, status, epochs and problems")
    show.add_argument("run_id", metavar="ID", help="run id (see `runs list`), run folder, or 'latest'")
    show.add_argument("--json", action="store_true", help="print everything as JSON")
    cancel = actions.add_parser("cancel", help="ask a running run to stop after its current batch")
    cancel.add_argument("run_id", metavar="ID", help="run id (see `runs list`)")
    rename = actions.add_parser("rename", help="give a run a new name (its start time stays in the id)")
    rename.add_argument("run_id", metavar="ID", help="run id (see `runs list`)")
    rename.add_argument("name", metavar="NAME", help="the new name, e.g. 'mobilenet first try'")
    delete = actions.add_parser("delete", help="move a run to the workspace's trash ($SIMPSONS_HOME/trash)")
    delete.add_argument("run_id", metavar="ID", help="run id (see `runs list`)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simpsons_core.run import launcher, lookup, manage

    if args.action == "list":
        infos = lookup.list_runs()
        print(_table(infos) if infos else "No runs yet: start one with `simpsons train`.")
    elif args.action == "cancel":
        launcher.cancel_run(args.run_id)
        print(f"Asked run {args.run_id} to stop; it saves model.keras after its current batch.")
    elif args.action == "rename":
        print(f"Renamed run {args.run_id} to {manage.rename_run(args.run_id, args.name)}.")
    elif args.action == "delete":
        print(f"Moved run {args.run_id} to {manage.delete_run(args.run_id)} (move it back to restore it).")
    else:
        info = lookup.find_run(args.run_id)
        print(_as_json(info) if args.json else _details(info))
    return 0


def warn_about_model(info: RunInfo) -> None:
    """A warning line on stderr when the run's best.keras is damaged and model.keras is used instead, so an
    answer from the last epoch's model is never mistaken for the best one's (predict, evaluate, explain,
    export)."""
    if note := info.model_note:
        print(f"warning: {note}", file=sys.stderr)


_TABLE_HEADER = ("ID", "STARTED", "MODEL", "STATE", "EPOCHS", "ACCURACY")


def _table(infos: list[RunInfo]) -> str:
    """The runs as aligned columns under a header; the last column (accuracy) is left ragged."""
    rows = [_TABLE_HEADER, *map(_row, infos)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_TABLE_HEADER) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    )


def _row(info: RunInfo) -> tuple[str, ...]:
    flag = "  (damaged: see `runs show`)" if info.problems else ""
    epochs = f"{len(info.epochs)}/{info.epochs_planned or '?'}"
    accuracy = honest_accuracy(info).line() + flag
    return (info.id, started_text(info), info.model_name, info.state, epochs, accuracy)


def _details(info: RunInfo) -> str:
    status, config = info.status, info.config
    lines = [f"Run {info.id}: {info.state}", f"  folder: {info.path}"]
    if config:
        dataset = info.dataset
        lines.append(
            f"  model {config.get('model')}, {config.get('image_size')} px, "
            f"batch {config.get('batch_size')}, lr {config.get('learning_rate')}, seed {config.get('seed')}, "
            f"recipe {config.get('recipe')}"
        )
        lines.append(f"  data: {info.dataset_path or 'the demo dataset'}")
        if dataset:
            lines.append(
                f"  {dataset.get('train_images')} training and {dataset.get('validation_images')} validation "
                f"images (validation: {config.get('validation')}), "
                f"classes: {', '.join(map(str, dataset.get('classes') or []))}"
            )
    if info.state == "running":
        eta = status.get("eta_seconds")
        lines.append(
            f"  {status.get('phase', 'running')}: epoch {status.get('epoch')}/{status.get('epochs')}, "
            f"step {status.get('step')}/{status.get('total_steps')}"
            + (f", about {eta:.0f} s left" if isinstance(eta, (int, float)) else "")
        )
    if info.error:
        lines.append(f"  error: {info.error}")
    lines.append(f"  accuracy: {honest_accuracy(info).line()}")
    if calibration := calibration_line(info.calibration):
        lines.append(f"  {calibration}")
    for line in info.epochs:
        lines.append(
            f"  epoch {line.get('epoch', '?')}: loss {_fmt(line.get('loss'))} "
            f"accuracy {_fmt(line.get('accuracy'))} "
            f"val_loss {_fmt(line.get('val_loss'))} val_accuracy {_fmt(line.get('val_accuracy'))} "
            f"({_fmt(line.get('seconds'), '.1f')} s)"
        )
    model = info.model_path
    lines.append(f"  model: {model.name if model else 'none saved yet'}")
    lines.extend(f"  problem: {problem}" for problem in info.problems)
    return "\n".join(lines)


def _as_json(info: RunInfo) -> str:
    data = {
        "id": info.id,
        "path": str(info.path),
        "state": info.state,
        "status": info.status,
        "config": info.config,
        "labels": info.labels,
        "epochs": info.epochs,
        "problems": info.problems,
    }
    return json.dumps(data, indent=2)


def _fmt(value, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"
