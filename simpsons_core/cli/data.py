"""`simpsons data create|add|move|remove|rename|undo|history|trash`: make and fix a dataset from a terminal,
with the same undoable actions as the dashboard (`simpsons_core.data.editing`)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

_DATASET_HELP = "the dataset: a folder, or the name of a dataset in $SIMPSONS_HOME/datasets"
_YES_HELP = "agree that files of your own folder (outside $SIMPSONS_HOME/datasets) are moved (asked once)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="make a dataset, add pictures, move or remove them (to a trash), undo",
        description="Make and fix a dataset. Removed pictures go to "
        "$SIMPSONS_HOME/trash/datasets/<dataset>/; every action can be undone (`data undo`); only "
        "`data trash --empty` deletes anything.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="a new dataset in $SIMPSONS_HOME/datasets, a folder per class")
    create.add_argument("name", metavar="NAME", help="the dataset's name, e.g. my-cats")
    create.add_argument("--classes", default="", help="class names separated by commas, e.g. tabby,black")
    add = actions.add_parser("add", help="add pictures (or a zip of pictures) to a class, made if missing")
    add.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    add.add_argument("class_name", metavar="CLASS", help="the class the pictures show")
    add.add_argument("files", metavar="FILE_OR_ZIP", nargs="+", type=Path, help="pictures or .zip files")
    move = actions.add_parser("move", help="move pictures to another class (same training or test side)")
    move.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    move.add_argument("pictures", metavar="PICTURE", nargs="+", help="paths, or paths inside the dataset")
    move.add_argument("--to", required=True, metavar="CLASS", help="the class to move them to")
    remove = actions.add_parser("remove", help="move pictures to the dataset's trash")
    remove.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    remove.add_argument("pictures", metavar="PICTURE", nargs="+", help="paths, or paths inside the dataset")
    rename = actions.add_parser("rename", help="rename a class (its folders on every side)")
    rename.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    rename.add_argument("old", metavar="CLASS", help="the class's name now")
    rename.add_argument("new", metavar="NEW", help="its new name")
    for action in (add, move, remove, rename):
        action.add_argument("--yes", action="store_true", help=_YES_HELP)
    for name, text in (("undo", "reverse the latest edit"), ("history", "list the edits, oldest first")):
        actions.add_parser(name, help=text).add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    trash = actions.add_parser("trash", help="how much the dataset's trash holds; --empty deletes it")
    trash.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    trash.add_argument("--empty", action="store_true", help="delete the trash's files (no undo for them)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simpsons_core.data import editing

    if args.action == "create":
        classes = [name for name in args.classes.split(",") if name.strip()]
        folder = editing.create_dataset(args.name, classes)
        listed = (
            f"classes {', '.join(path.name for path in sorted(folder.iterdir()))}" if classes else "no class"
        )
        print(f"Created dataset {folder.name} in {folder} with {listed}.")
        return 0
    dataset = editing.find_dataset(args.dataset)
    if getattr(args, "yes", False) and editing.needs_consent(dataset):
        editing.grant_consent(dataset)
        print(f"Noted: files in {dataset} may be moved (never deleted); you will not be asked again.")
    undo_hint = f"undo: simpsons data undo {args.dataset}"
    if args.action == "add":
        result = editing.add_pictures(dataset, args.class_name, [(path.name, path) for path in args.files])
        for name, reason in result.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        if result.edit is None:
            raise ValueError(f"No picture was added to {args.class_name}: every file was skipped.")
        print(f"{result.edit.describe()} in {dataset} ({undo_hint}).")
    elif args.action in ("move", "remove"):
        pictures = [_picture(text) for text in args.pictures]
        if args.action == "move":
            edit = editing.move_pictures(dataset, pictures, args.to)
        else:
            edit = editing.remove_pictures(dataset, pictures)
        print(f"{edit.describe()} ({undo_hint}).")
    elif args.action == "rename":
        editing.rename_class(dataset, args.old, args.new)
        print(f"Class {args.old} renamed to {args.new} in {dataset} ({undo_hint}).")
    elif args.action == "undo":
        edit = editing.undo(dataset)
        print(f"Undone: {edit.describe()}." if edit else f"Nothing to undo in {dataset}.")
        for note in edit.notes if edit else ():
            print(f"note: {note}.")
    elif args.action == "history":
        edits = editing.history(dataset)
        for edit in edits:
            print(f"{_local(edit.time)}  {edit.state:<8} {edit.describe()}")
        if not edits:
            print(f"No edits of {dataset} yet.")
    else:
        _trash(editing, dataset, args.empty)
    return 0


def _picture(text: str) -> Path:
    """A picture path as typed: relative to the current folder when it exists there, else (as the scan
    report shows paths) relative to the dataset."""
    path = Path(text).expanduser()
    return path.resolve() if path.exists() else path


def _local(time: str) -> str:
    return datetime.fromisoformat(time).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _trash(editing, dataset: Path, empty: bool) -> None:
    files, size = editing.trash_size(dataset)
    held = f"{files:,} file{'' if files == 1 else 's'} ({size / 1e6:,.1f} MB)"
    if not empty:
        print(f"The trash of {dataset} holds {held} in {editing.trash_folder(dataset)}.")
        return
    expiring = editing.expiring_edits(dataset)
    editing.empty_trash(dataset)
    ended = (
        f"; these can no longer be undone: {'; '.join(edit.describe() for edit in expiring)}"
        if expiring
        else ""
    )
    print(f"Deleted {held} from the trash of {dataset}{ended}.")
