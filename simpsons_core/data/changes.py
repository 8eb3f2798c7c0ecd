"""Whether a run's dataset changed after the run: what it recorded per class against a count of it now.

A run records the readable pictures it trained and validated on per class (`config.json`'s `dataset`), and
the files it could not read. The folder is counted again by file name only (nothing decoded, so it costs a
directory listing). With validation "split" both counts come from the training folder; with "test" the
validation count is the test folder's, compared on its own. Edits that keep every count (a picture removed,
another added) are found in the dataset's journal.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simpsons_core.data.folders import DatasetLayout, detect_layout
from simpsons_core.data.trash import Edit, Journal

if TYPE_CHECKING:
    from simpsons_core.run.folder import RunInfo

_SHOWN = 4  # changes named in the sentence


def data_changed_since(info: RunInfo) -> str | None:
    """A sentence saying how the run's dataset differs now ("The data changed after this run: homer_simpson
    2,246 -> 2,243 pictures, 1 class added (maggie)."), or None when it is the same or no record says."""
    recorded, root = info.dataset, info.dataset_path
    if root is None or not isinstance(recorded.get("train_per_class"), dict):
        return None
    if not root.is_dir():
        return f"The data this run trained on is no longer at {root}."
    try:
        layout = detect_layout(root)
    except ValueError:
        return f"The data changed after this run: {root} holds no labelled pictures now."
    then_train, then_test = _recorded_files(recorded, info.validation == "test", layout)
    changes = _count_changes(then_train, Counter(item.label for item in layout.train), "")
    if info.validation == "test":
        changes += _count_changes(then_test, Counter(item.label for item in layout.test), "test ")
    then_classes = set(recorded.get("classes") or then_train)
    changes += _class_changes(sorted(set(layout.classes) - then_classes), "added")
    changes += _class_changes(sorted(then_classes - set(layout.classes)), "removed")
    sides = [layout.train_dir, *([layout.test_dir] if info.validation == "test" and layout.test_dir else [])]
    if not changes and (edits := _edits_since(layout.root, sides, info.started_at)):
        changes = [
            f"{edits} edit{'s' if edits > 1 else ''} since, with the same number of pictures per class"
        ]
    if not changes:
        return None
    more = f", and {len(changes) - _SHOWN} more" if len(changes) > _SHOWN else ""
    return f"The data changed after this run: {', '.join(changes[:_SHOWN])}{more}."


def _recorded_files(
    recorded: dict[str, Any], test_validation: bool, layout: DatasetLayout
) -> tuple[Counter[str], Counter[str]]:
    """(training-folder files, test-folder files) per class when the run started: the pictures it read plus
    those it could not read that are still there (one that is gone was never trained on)."""
    train, validation = (
        Counter(recorded["train_per_class"]),
        Counter(recorded.get("validation_per_class") or {}),
    )
    test = validation if test_validation else Counter()
    if not test_validation:
        train += validation
    sides = {str(item.path): (train, item.label) for item in layout.train}
    sides |= {str(item.path): (test, item.label) for item in layout.test}
    for path, *_ in recorded.get("skipped") or []:
        if str(path) in sides:
            counter, label = sides[str(path)]
            counter[label] += 1
    return train, test


def _count_changes(then: Counter[str], now: Counter[str], side: str) -> list[str]:
    return [
        f"{side}{name} {then[name]:,} -> {now[name]:,} pictures"
        for name in sorted(set(then) & set(now))
        if then[name] != now[name]
    ]


def _class_changes(names: list[str], what: str) -> list[str]:
    if not names:
        return []
    return [f"{len(names)} class{'es' if len(names) > 1 else ''} {what} ({', '.join(names)})"]


def _edits_since(root: Path, sides: list[Path], started: datetime | None) -> int:
    """Edits not undone, made after `started` (whenever, when that is unknown), that moved a file of the
    folders the run used (`sides`)."""

    def touches(edit: Edit) -> bool:
        places = [place for move in edit.moves for place in (move.source, move.target) if place]
        return any(place.is_relative_to(side) for place in places for side in sides)

    return sum(
        edit.state != "undone"
        and (started is None or datetime.fromisoformat(edit.time) > started.astimezone())
        and touches(edit)
        for edit in Journal(root).history()
    )
