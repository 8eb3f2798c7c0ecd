"""The record of a dataset's edits and its trash: every change can be undone, nothing is ever erased unasked.

Each dataset has a folder `<SIMPSONS_HOME>/trash/datasets/<key>/` (`trash/runs/` holds deleted runs) with
- `journal.jsonl`: one JSON object a line, appended whole (`atomic.append_line`): an `edit` (id, time, action,
  every (from, to) move, summary), an `undo` (which edit, which of its moves were reversed and where to, what
  could not be) or a `trash-emptied` (the edits whose files it deleted, which can no longer be undone);
- `<UTC time>/<path in the dataset>`: the files an edit removed, under the path they had in the dataset.

A move never overwrites (`move_path`), so an action that fails half-way leaves every file in exactly one
place; the journal records only the moves that happened. Edits of one dataset are serialised by a lock
file, so the dashboard and the CLI can work on it at the same time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from simpsons_core import atomic, paths

JOURNAL = "journal.jsonl"
_LOCK = ".lock"
_STAMP = "%Y%m%dT%H%M%SZ"  # a trash folder's name: when the edit was made, in UTC
_SHOWN = 3  # failures named in one message


@dataclass(frozen=True)
class Move:
    """One file or folder an edit moved; `source` is None for a file the edit added."""

    source: Path | None
    target: Path


@dataclass(frozen=True)
class Edit:
    """One action on a dataset, as the journal records it.

    Attributes:
        action: "add", "move", "remove", "rename" or "remove-class".
        moves: every move it made, in order.
        summary: what it did, in words ("3 pictures moved to homer_simpson").
        state: "done" (undoable), "undone", or "expired" (its files were deleted when the trash was emptied).
        undone: indices of `moves` already reversed (or found missing) by an undo that stopped half-way.
        notes: what an undo had to do differently, one sentence each ("x.jpg is taken now: restored as ...").
    """

    id: str
    time: str
    action: str
    moves: tuple[Move, ...]
    summary: str
    state: str = "done"
    undone: frozenset[int] = frozenset()
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.summary

    @property
    def undoable(self) -> bool:
        return self.state == "done"

    @property
    def pending(self) -> list[tuple[int, Move]]:
        """(index, move) of the moves not reversed yet."""
        return [(index, move) for index, move in enumerate(self.moves) if index not in self.undone]


class EditIncomplete(ValueError):
    """Part of an action could not be done; what was done is recorded in `edit` (None when nothing was)."""

    def __init__(self, message: str, edit: Edit | None, failures: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.edit = edit
        self.failures = list(failures)


def incomplete(
    done: str, failures: Sequence[tuple[str, str]], edit: Edit | None, after: str
) -> EditIncomplete:
    """The error for an action that did `done` ("2 pictures moved to bart") but not `failures` ((name,
    reason) each), ending with `after` (what to do now)."""
    named = "; ".join(f"{name} ({reason})" for name, reason in failures[:_SHOWN])
    more = f"; and {len(failures) - _SHOWN} more" if len(failures) > _SHOWN else ""
    return EditIncomplete(
        f"{done}; {len(failures)} not done: {named}{more}. {after}".rstrip(), edit, failures
    )


def dataset_key(root: Path) -> str:
    """The trash folder name of the dataset at `root`: its name for a dataset directly in the workspace's
    datasets folder, else its name and a short hash of its absolute path (two `data` folders differ)."""
    if root.parent == paths.datasets_dir():
        return root.name
    digest = hashlib.blake2b(str(root).encode(), digest_size=4).hexdigest()
    name = re.sub(r"[^\w.-]+", "-", root.name).strip(".-") or "dataset"
    return f"{name}-{digest}"


def free_path(path: Path) -> Path:
    """`path`, or beside it the first of `name-2.jpg`, `name-3.jpg`, ... that does not exist."""
    if not os.path.lexists(path):
        return path
    stem, suffix = (path.stem, path.suffix) if path.suffix and not path.is_dir() else (path.name, "")
    for number in itertools.count(2):
        candidate = path.with_name(f"{stem}-{number}{suffix}")
        if not os.path.lexists(candidate):
            return candidate
    raise AssertionError("unreachable")


def move_path(source: Path, target: Path) -> None:
    """Move a file or folder to `target`, which must not exist (FileExistsError): never overwrites.

    Across disks (the trash on another one) the copy is made under a temporary name, renamed into place, and
    only then is the source removed, so a failure leaves the source where it was.
    """
    os.lstat(source)  # FileNotFoundError before anything is made for a source that is gone
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "the target exists", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    temp = atomic.temp_path_for(target)
    try:
        if source.is_dir():
            shutil.copytree(source, temp, symlinks=True)
        else:
            shutil.copy2(source, temp, follow_symlinks=False)
        os.rename(temp, target)
    except BaseException:  # a partial copy (a full disk): remove it, the source is untouched
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
        raise
    if source.is_dir():
        shutil.rmtree(source)
    else:
        source.unlink()


def failure_reason(error: OSError, root: Path) -> str:
    """Why a move failed, in words, naming the path involved relative to the dataset."""
    if isinstance(error, FileNotFoundError):
        return "no such file: moved or deleted meanwhile?"
    where = Path(error.filename) if error.filename else None
    shown = f": {where.relative_to(root) if where and where.is_relative_to(root) else where}" if where else ""
    return f"{error.strerror or error}{shown}"


def _replay(record: dict, edits: dict[str, Edit]) -> None:
    """Apply one journal record to `edits` (by id, in journal order)."""
    kind = record.get("type")
    if kind == "edit":
        moves = tuple(Move(Path(a) if a else None, Path(b)) for a, b in record["moves"])
        edits[record["id"]] = Edit(record["id"], record["time"], record["action"], moves, record["summary"])
    elif kind == "undo" and (edit := edits.get(record["edit"])):
        undone = edit.undone | set(record["handled"])
        state = "undone" if len(undone) >= len(edit.moves) else edit.state
        edits[edit.id] = replace(edit, undone=frozenset(undone), state=state)
    elif kind == "trash-emptied":
        for edit_id in record["edits"]:
            if edit_id in edits and edits[edit_id].undoable:
                edits[edit_id] = replace(edits[edit_id], state="expired")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Journal:
    """The journal and trash folder of the dataset at `root` (its resolved root folder)."""

    root: Path
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.folder = paths.trash_dir() / "datasets" / dataset_key(self.root)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this dataset's edit lock: one edit at a time, whichever process makes it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def new_trash_folder(self) -> Path:
        """A new folder for one edit's removed files, named by the time (the folder is made by the first
        file moved in)."""
        return free_path(self.folder / _now().strftime(_STAMP))

    def _append(self, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic.append_line(self.folder / JOURNAL, json.dumps(record))

    def record(self, action: str, moves: Sequence[Move], summary: str) -> Edit:
        """Append an edit to the journal (call with the lock held, after the moves)."""
        edit = Edit(uuid.uuid4().hex[:12], _now().isoformat(), action, tuple(moves), summary)
        pairs = [[str(move.source) if move.source else None, str(move.target)] for move in moves]
        self._append(
            {"type": "edit", "id": edit.id, "time": edit.time, "action": action, "dataset": str(self.root)}
            | {"moves": pairs, "summary": summary}
        )
        return edit

    def history(self) -> list[Edit]:
        """Every edit, oldest first, with its state; damaged lines (a disk that filled up, a hand edit) are
        skipped."""
        edits: dict[str, Edit] = {}
        try:
            lines = (self.folder / JOURNAL).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                _replay(json.loads(line), edits)
        return list(edits.values())

    def next_undo(self) -> Edit | None:
        """The edit `undo` would reverse: the latest one still undoable."""
        return next((edit for edit in reversed(self.history()) if edit.undoable), None)

    def undo(self) -> Edit | None:
        """Reverse the latest undoable edit; None when there is none.

        A file goes back to its old path, or beside it with a suffix when that path is taken now (a note
        says so); an added file goes to the trash. A file no longer where the edit put it, or a move that
        fails, is reported in an `EditIncomplete` raised after recording what was reversed.
        """
        with self.locked():
            edit = self.next_undo()
            if edit is None:
                return None
            trash = self.new_trash_folder()
            handled, moves, notes, failures = [], [], [], []
            for index, move in reversed(edit.pending):
                wanted = move.source or trash / move.target.relative_to(self.root)
                back = free_path(wanted)
                try:
                    move_path(move.target, back)
                except FileNotFoundError:
                    handled.append(index)  # gone outside the app: nothing left to reverse
                    failures.append((self._show(move.target), "it is no longer there"))
                    continue
                except OSError as error:
                    failures.append((self._show(move.target), failure_reason(error, self.root)))
                    break
                handled.append(index)
                moves.append([str(move.target), str(back)])
                self._prune(move.target.parent)
                if move.source and back != wanted:
                    notes.append(f"{self._show(wanted)} is taken now: restored as {back.name} beside it")
            self._append(
                {"type": "undo", "time": _now().isoformat(), "edit": edit.id, "handled": handled}
                | {"moves": moves, "notes": notes}
            )
        undone = replace(
            edit,
            undone=edit.undone | set(handled),
            state="undone" if len(edit.undone) + len(handled) >= len(edit.moves) else "done",
            notes=tuple(notes),
        )
        if failures:
            done = f'Undo of "{edit.summary}" reversed {len(moves)} of {len(edit.pending)} moves'
            retry = "Undo again to retry the rest." if undone.undoable else ""
            raise incomplete(done, failures, undone, retry)
        return undone

    def _prune(self, folder: Path) -> None:
        """Remove the folders an undo emptied in the trash, up to this dataset's trash folder."""
        while folder != self.folder and folder.is_relative_to(self.folder):
            try:
                folder.rmdir()
            except OSError:  # not empty
                return
            folder = folder.parent

    def _show(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def _trash_files(self) -> Iterator[Path]:
        for entry in self.folder.iterdir() if self.folder.is_dir() else ():
            if entry.is_dir() and not entry.is_symlink():
                yield from (path for path in entry.rglob("*") if not path.is_dir() or path.is_symlink())

    def trash_size(self) -> tuple[int, int]:
        """(files, bytes) in this dataset's trash."""
        sizes = [path.lstat().st_size for path in self._trash_files()]
        return len(sizes), sum(sizes)

    def expiring(self) -> list[Edit]:
        """The undoable edits whose files are in the trash: emptying it ends their undo."""
        return [
            edit
            for edit in self.history()
            if edit.undoable and any(move.target.is_relative_to(self.folder) for _, move in edit.pending)
        ]

    def empty(self) -> int:
        """Delete the trash's files (the journal stays) and record that the edits they came from can no longer
        be undone; returns the number of files deleted."""
        with self.locked():
            files, _ = self.trash_size()
            expired = [edit.id for edit in self.expiring()]
            for entry in self.folder.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
            self._append(
                {"type": "trash-emptied", "time": _now().isoformat(), "edits": expired, "files": files}
            )
        return files
