"""`runs list`, `runs show ID`, `runs cancel ID`: the training runs of the workspace."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from simpsons_core.runs.summary import calibration_line, honest_accuracy

if TYPE_CHECKING:
    from simpsons_core.runs.folder import RunInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list, inspect or cancel training runs",
        description="The training runs of the workspace ($SIMPSONS_HOME/runs), oldest first.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="one line per run: id, state, epochs, best validation accuracy")
    show = actions.add_parser("show", help="a run's settings, status, epochs and problems")
    show.add_argument("run_id", metavar="ID", help="run id (see `runs list`)")
    show.add_argument("--json", action="store_true", help="print everything as JSON")
    cancel = actions.add_parser("cancel", help="ask a running run to stop after its current batch")
    cancel.add_argument("run_id", metavar="ID", help="run id (see `runs list`)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simpsons_core.runs import launcher, lookup

    if args.action == "list":
        infos = lookup.list_runs()
        if not infos:
            print("No runs yet: start one with `python -m simpsons_core train`.")
        for info in infos:
            print(_one_line(info))
        return 0
    if args.action == "cancel":
        launcher.cancel_run(args.run_id)
        print(f"Asked run {args.run_id} to stop; it saves model.keras after its current batch.")
        return 0
    info = lookup.read_run(args.run_id)
    if not info.path.is_dir():
        raise FileNotFoundError(f"There is no run {args.run_id} (see `runs list`).")
    print(_as_json(info) if args.json else _details(info))
    return 0


def warn_about_model(info: RunInfo) -> None:
    """A warning line on stderr when the run's best.keras is damaged and model.keras is used instead, so an
    answer from the last epoch's model is never mistaken for the best one's (predict, evaluate, explain,
    export)."""
    if note := info.model_note:
        print(f"warning: {note}", file=sys.stderr)


def _one_line(info: RunInfo) -> str:
    flag = "  (damaged: see `runs show`)" if info.problems else ""
    epochs = f"epoch {len(info.epochs)}/{info.epochs_planned or '?'}"
    return f"{info.id}  {info.state:<9}  {epochs}  {honest_accuracy(info).line()}{flag}"


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
