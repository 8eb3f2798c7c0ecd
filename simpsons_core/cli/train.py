"""`train [--data DIR] [--recipe NAME] [--model NAME] [--epochs N] ... [--detach]`: train a classifier.

In the foreground (the default) it shows a progress bar and writes the same run folder as a run started from
the dashboard; `--detach` starts it in the background and returns at once. `--run-dir` is how the child
process of `launcher.start_run` is started; users do not need it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from simpsons_core.config import (
    BALANCED_WEIGHTS_ABOVE,
    CLASS_WEIGHTS,
    DEFAULT_RECIPE,
    LR_SCHEDULES,
    PRECISIONS,
    RECIPE_NOTES,
    RECIPES,
    STRATEGIES,
    VALIDATION_SOURCES,
    TrainConfig,
    recipe,
)
from simpsons_core.data.folders import dataset_folder
from simpsons_core.training.models import MODELS
from simpsons_core.training.strategy import (
    MULTIWORKER,
    TF_CONFIG,
    Cluster,
    cluster_for,
    tf_config,
    worker_scratch_dir,
)

# Command-line option -> TrainConfig field, for the options that override the recipe.
OVERRIDES = {
    "model": "model",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "img_size": "image_size",
    "lr": "learning_rate",
    "lr_schedule": "lr_schedule",
    "seed": "seed",
    "validation": "validation",
    "validation_fraction": "validation_fraction",
    "patience": "early_stopping_patience",
    "strategy": "strategy",
    "class_weights": "class_weights",
    "precision": "precision",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a classifier on a folder of labelled images",
        description=(
            "Train a classifier and record it as a run in the workspace (see `runs list`). Values start from "
            "the recipe and each option below overrides one of them. Without --data, the dashboard's dataset "
            "is used: $SIMPSONS_DATA, else the folder chosen on the Dataset page, else the demo dataset."
        ),
    )
    parser.add_argument("--data", type=Path, metavar="DIR", help="dataset folder (default: the dashboard's)")
    parser.add_argument(
        "--recipe",
        choices=list(RECIPES),
        default=DEFAULT_RECIPE,
        help="starting values: "
        + "; ".join(f"'{name}': {note}" for name, note in RECIPE_NOTES.items())
        + f" (default: {DEFAULT_RECIPE})",
    )
    parser.add_argument("--model", choices=list(MODELS), help="network to train")
    parser.add_argument(
        "--augment",
        choices=list(RECIPES),
        help="that recipe's augmentation: 'studio' (face-sized crops, rotation, colour jitter) or "
        "'tutorial' (the seed's shear, zoom, shifts and flip)",
    )
    parser.add_argument("--epochs", type=int, metavar="N", help="passes over the training images")
    parser.add_argument("--batch-size", type=int, metavar="N", help="images per step (the global batch)")
    parser.add_argument("--img-size", type=int, metavar="N", help="images are resized to N x N pixels")
    parser.add_argument("--lr", type=float, metavar="X", help="Adam learning rate")
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="'cosine': decay the learning rate to 0 over the epochs (studio); 'constant' (tutorial)",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="seed for the split, shuffling and weights")
    parser.add_argument(
        "--validation",
        choices=VALIDATION_SOURCES,
        help="'split': hold out part of the training folder, near-duplicates kept on one side; "
        "'test': the dataset's own test folder",
    )
    parser.add_argument(
        "--validation-fraction", type=float, metavar="F", help="share held out with --validation split"
    )
    parser.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="stop after N epochs without better validation accuracy (0: off)",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="tf.distribute strategy; 'auto' mirrors over several GPUs when there are any; 'multiworker' "
        "trains over several machines (--workers, or TF_CONFIG)",
    )
    parser.add_argument(
        "--workers",
        metavar="HOST:PORT,...",
        help="train over these machines (implies --strategy multiworker): every worker's address, the chief "
        "first, the same list on each; each machine runs the same command with its own --worker-index",
    )
    parser.add_argument(
        "--worker-index",
        type=int,
        metavar="I",
        help="this machine's place in --workers; 0 is the chief, which writes the run",
    )
    parser.add_argument(
        "--class-weights",
        choices=CLASS_WEIGHTS,
        help="'balanced': weight each image's loss by the inverse of its class's share of the training "
        f"images, so small classes count as much as large ones (the scan suggests it above an imbalance of "
        f"{BALANCED_WEIGHTS_ABOVE}); 'none': every image alike",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="'auto': bfloat16 mixed precision where a short probe, cached per CPU kind, finds it "
        "faster for this model and size on a CPU with AMX or AVX512-BF16 (or a GPU with bfloat16), else "
        "float32; saved models are float32 either way",
    )
    parser.add_argument(
        "--detach", action="store_true", help="train in the background; print the run id and return at once"
    )
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The recipe's TrainConfig with every option given on the command line applied."""
    changes: dict[str, Any] = {
        field: getattr(args, option)
        for option, field in OVERRIDES.items()
        if getattr(args, option) is not None
    }
    if args.data is not None:
        changes["data_dir"] = str(dataset_folder(args.data).resolve())
    if args.augment is not None:
        changes["augment"] = recipe(args.augment).augment
    return recipe(args.recipe).replace(**changes)


def run(args: argparse.Namespace) -> int:
    from simpsons_core.run import launcher, lookup

    if args.run_dir is not None:
        return _run_child(args.run_dir)
    _join_cluster(args)
    if args.data is None:
        _use_active_dataset(args)
    config = config_from_args(args)
    cluster = cluster_for(config.strategy)
    if cluster and not cluster.is_chief:
        return _train_as_worker(config, cluster, args.detach)
    if args.detach:
        run_id = launcher.start_run(config)
        print(f"Started run {run_id} in the background ({lookup.run_dir(run_id)}).")
        print(f"Follow it with: simpsons runs show {run_id}")
        return 0
    return _train_with_progress_bar(config, launcher.begin_run(config).path)


def _join_cluster(args: argparse.Namespace) -> None:
    """`--workers` and `--worker-index` become this process's TF_CONFIG (what TensorFlow and a detached
    child read) and `--strategy multiworker`."""
    if args.workers is None and args.worker_index is None:
        return
    if args.workers is None:
        raise ValueError("--worker-index needs --workers host:port,host:port (the chief first).")
    if args.strategy not in (None, MULTIWORKER):
        raise ValueError(
            f"--workers trains over several machines: give --strategy {MULTIWORKER} or leave it out, not "
            f"--strategy {args.strategy}."
        )
    args.strategy = MULTIWORKER
    os.environ[TF_CONFIG] = tf_config(args.workers, args.worker_index)


def _train_as_worker(config: TrainConfig, cluster: Cluster, detach: bool) -> int:
    """A non-chief worker trains in the foreground, into a scratch folder of its own: the chief writes the
    run."""
    if detach:
        raise ValueError(
            "--detach starts the chief's run in the background; run the other workers in the foreground "
            "(under nohup or a service manager to keep them after logout)."
        )
    folder = worker_scratch_dir(cluster)
    print(f"This machine is {cluster.describe()}: the chief writes the run; this worker logs to {folder}")
    return _train_with_progress_bar(config, folder)


def _use_active_dataset(args: argparse.Namespace) -> None:
    """Train on the dataset the dashboard shows (so the two never silently differ), and say which it is."""
    from simpsons_core.settings import active_dataset

    active = active_dataset()
    print(f"Dataset: {active.describe()} (--data DIR to choose another)")
    args.data = active.path


def _run_child(folder: Path) -> int:
    """The detached process of `launcher.start_run`: train the config.json in `folder`."""
    from simpsons_core.run import lock, lookup
    from simpsons_core.run.folder import RunFolder
    from simpsons_core.training.trainer import train_in_foreground

    config = lookup.read_run(folder).train_config()
    if config is None:
        RunFolder(folder).update_status(state="failed", error="config.json is missing or damaged.")
        lock.release_lock(folder.name)
        return 2
    info = train_in_foreground(config, folder)
    print(f"Run {info.id} {info.state}" + (f": {info.error}" if info.error else "."))
    return 0 if info.state in ("completed", "cancelled") else 1


def _train_with_progress_bar(config: TrainConfig, folder: Path) -> int:
    from tqdm import tqdm

    from simpsons_core.training.trainer import train_in_foreground

    print(f"Run {folder.name}: {folder}")
    bar = tqdm(total=0, unit="batch", dynamic_ncols=True, disable=None)

    def show(line: dict[str, Any]) -> None:
        if line["type"] == "phase":
            bar.set_description(line["phase"])
        elif line["type"] == "progress":
            bar.total = line["steps"] * config.epochs
            bar.set_description(f"epoch {line['epoch']}/{config.epochs}")
            bar.set_postfix(loss=f"{line['loss']:.4f}", accuracy=f"{line['accuracy']:.3f}", refresh=False)
            bar.update((line["epoch"] - 1) * line["steps"] + line["step"] - bar.n)
        elif line["type"] == "epoch":
            bar.write(_epoch_summary(line, config.epochs))

    try:
        info = train_in_foreground(config, folder, progress=show)
    finally:
        bar.close()
    from simpsons_core.run.summary import honest_accuracy

    print(f"Run {info.id} {info.state}, {honest_accuracy(info).line('best validation accuracy')}.")
    if info.error:
        print(f"error: {info.error}", file=sys.stderr)
    return {"completed": 0, "cancelled": 130}.get(info.state, 1)


def _epoch_summary(line: dict[str, Any], epochs: int) -> str:
    def value(key: str) -> str:
        return "-" if line.get(key) is None else f"{line[key]:.4f}"

    return (
        f"epoch {line['epoch']}/{epochs}: loss {value('loss')} accuracy {value('accuracy')} "
        f"val_loss {value('val_loss')} val_accuracy {value('val_accuracy')} ({line['seconds']:.1f} s)"
    )
