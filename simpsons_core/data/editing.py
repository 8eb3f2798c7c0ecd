"""Making and fixing a dataset: create it, add classes and pictures, move or remove pictures, undo.

Every change is recorded by the dataset's `trash.Journal`, so `undo` reverses it, and a removal moves the
file into the dataset's trash: nothing is deleted until `empty_trash`. A dataset outside the workspace's
datasets folder is the user's own; the app asks once (`needs_consent`, `grant_consent`) before changing it.

Example:
```python
folder = create_dataset("my-cats", ["tabby", "black"])
add_pictures(folder, "tabby", [("a.jpg", jpeg_bytes)])
move_pictures(folder, [folder / "tabby" / "a.jpg"], "black").describe()  # "1 picture moved to black"
undo(folder)
```
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from simpsons_core import atomic, paths, settings
from simpsons_core.data.changes import data_changed_since as data_changed_since  # part of this API
from simpsons_core.data.folders import (
    IGNORED_NAMES,
    TEST_NAMES,
    TRAIN_NAMES,
    TUTORIAL_FOLDERS,
    DatasetLayout,
    dataset_folder,
    detect_layout,
)
from simpsons_core.data.images import (
    IMAGE_SUFFIXES,
    MAX_IMAGE_BYTES,
    ImageError,
    image_file_stat,
    is_image_name,
    open_rgb,
)
from simpsons_core.data.trash import Edit, Journal, Move, failure_reason, free_path, incomplete, move_path
from simpsons_core.data.zip_import import import_zip

CAMERA_JPEG_QUALITY = 92
# In a folder of class folders these names would make the dataset read as a train/test layout.
_RESERVED = frozenset(name.lower() for name in (*TUTORIAL_FOLDERS, *TRAIN_NAMES, *TEST_NAMES))
_TRAIN_FOLDERS = (TUTORIAL_FOLDERS[0], *TRAIN_NAMES)  # in the order `detect_layout` tries them
_STEM_MAX = 100  # characters of an uploaded file's name kept (a disk allows 255 bytes)
_FILE = "The file"  # how a skipped file's reason names it (the file is named beside the reason)


class ConsentNeeded(ValueError):
    """The dataset is the user's own folder and they have not agreed yet that the app may move its files."""


@dataclass(frozen=True)
class AddResult:
    """What `add_pictures` did: the files written, those skipped (name, reason), and the undoable edit."""

    added: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...]
    edit: Edit | None


@dataclass(frozen=True)
class _Dataset:
    """A dataset's root folder, its training and test folders, and its layout when it has pictures."""

    root: Path
    train_dir: Path
    test_dir: Path | None
    layout: DatasetLayout | None

    @property
    def journal(self) -> Journal:
        return Journal(self.root)

    def classes(self) -> list[str]:
        """Class folders of either side, empty ones too (the layout counts only classes with pictures)."""
        sides = [self.train_dir, *([self.test_dir] if self.test_dir else [])]
        return sorted({folder.name for side in sides for folder in _subfolders(side)})

    def sides(self) -> list[Path]:
        return [self.train_dir, *([self.test_dir] if self.test_dir else [])]

    def side_of(self, path: Path) -> Path | None:
        """The training or test folder `path` lies in; None when it is in neither."""
        return next((side for side in reversed(self.sides()) if path.is_relative_to(side)), None)

    def show(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    def flat_test_files(self, label: str) -> list[Path]:
        """Test pictures lying loose in the test folder, labelled `label` by their file names."""
        if self.layout is None or self.test_dir is None:
            return []
        return [
            item.path
            for item in self.layout.test
            if item.path.parent == self.test_dir and item.label == label
        ]


def _subfolders(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name not in IGNORED_NAMES
    )


def _open(dataset: str | Path) -> _Dataset:
    folder = dataset_folder(dataset).resolve()
    try:
        layout = detect_layout(folder)
    except ValueError:  # no labelled picture yet: a new (or emptied) dataset
        return _without_pictures(folder)
    return _Dataset(layout.root, layout.train_dir, layout.test_dir, layout)


def _without_pictures(folder: Path) -> _Dataset:
    """The folders of a dataset that has no picture to detect its layout from: the training folder
    (`train/`, `simpsons_trainset/`) and test folder when there are some, else the folder itself, looking
    through a wrapper folder as `detect_layout` does (one subfolder holding folders, and nothing else)."""
    named = {path.name.lower(): path for path in _subfolders(folder)}
    if len(named) == 1 and not named.keys() & set(_TRAIN_FOLDERS) and len(list(folder.iterdir())) == 1:
        (inner,) = named.values()
        if _subfolders(inner):
            return _without_pictures(inner)
    train = next((named[name] for name in _TRAIN_FOLDERS if name in named), None)
    if train is None:
        return _Dataset(folder, folder, None, None)
    test = next((named[name] for name in (TUTORIAL_FOLDERS[1], *TEST_NAMES) if name in named), None)
    return _Dataset(folder, train, test, None)


def datasets_home() -> Path:
    """Where datasets made in the app live (`SIMPSONS_HOME/datasets`); editing them needs no consent."""
    return paths.datasets_dir()


def find_dataset(name_or_path: str | Path) -> Path:
    """A dataset folder given as a path, or as the name of a dataset in `datasets_home()`."""
    given = Path(name_or_path).expanduser()
    if given.is_dir():
        return given.resolve()
    named = datasets_home() / str(name_or_path)
    if given.name == str(name_or_path) and named.is_dir():
        return named
    known = ", ".join(path.name for path in _subfolders(datasets_home())) or "none yet"
    raise ValueError(
        f"{name_or_path} is neither a folder nor a dataset in {datasets_home()} (datasets there: {known})."
    )


def check_name(name: str, what: str = "class") -> str:
    """`name` without surrounding spaces when it can name a dataset or class folder; ValueError saying why
    not (empty, a path, hidden, reserved)."""
    text = name.strip()
    if not text or text in (".", ".."):
        raise ValueError(f"Give the {what} a name (letters, digits, - or _), e.g. homer_simpson.")
    if any(char in text for char in "/\\\0"):
        raise ValueError(
            f"The {what} name {text!r} contains a path separator; use a plain name like homer_simpson."
        )
    if text.startswith(".") or text in IGNORED_NAMES:
        raise ValueError(f"The {what} name {text!r} would be a hidden or system folder; choose another.")
    if len(os.fsencode(text)) > 255:
        raise ValueError(f"The {what} name is {len(os.fsencode(text))} bytes long; a folder name allows 255.")
    if what == "class" and text.lower() in _RESERVED:
        raise ValueError(
            f"{text!r} cannot name a class: a folder called so makes the dataset read as a train/test layout."
        )
    return text


def _refuse_clash(dataset: _Dataset, name: str, renaming: str | None = None) -> None:
    for existing in dataset.classes():
        if existing.casefold() == name.casefold() and existing != renaming:
            raise ValueError(f"{dataset.root} has a class {existing} already; choose another name.")


def create_dataset(name: str, classes: Sequence[str] = ()) -> Path:
    """A new dataset `datasets_home()/name` with an empty folder per class (the single-folder layout)."""
    name = check_name(name, "dataset")
    names = [check_name(item) for item in classes]
    folded = [item.casefold() for item in names]
    if len(set(folded)) < len(folded):
        raise ValueError(f"The class names {', '.join(names)} repeat a name; give each class its own.")
    target = datasets_home() / name
    if os.path.lexists(target):
        raise ValueError(f"A dataset named {name} exists already in {datasets_home()}; choose another name.")
    target.mkdir()
    for item in names:
        (target / item).mkdir()
    return target


def needs_consent(dataset: str | Path) -> bool:
    """Whether `dataset` is a folder of the user's (outside `datasets_home()`) not yet agreed to be edited."""
    return _needs_consent(_open(dataset).root)


def _needs_consent(root: Path) -> bool:
    return not root.is_relative_to(datasets_home()) and not settings.edit_consent_given(root)


def grant_consent(dataset: str | Path) -> None:
    """Record that the user agreed that the app may move files in `dataset` (asked once per folder)."""
    settings.remember_edit_consent(_open(dataset).root)


def _editable(dataset: str | Path) -> _Dataset:
    found = _open(dataset)
    if _needs_consent(found.root):
        raise ConsentNeeded(
            f"{found.root} is your own folder, and Simpsons Studio asks once before changing files there: "
            "files will be moved, never deleted (removed pictures go to the workspace's trash, and every "
            "change can be undone); pass --yes / confirm on the page."
        )
    return found


def add_class(dataset: str | Path, name: str) -> Path:
    """A new empty class folder in the dataset's training folder."""
    found = _editable(dataset)
    name = check_name(name)
    _refuse_clash(found, name)
    folder = found.train_dir / name
    folder.mkdir()
    return folder


def rename_class(dataset: str | Path, old: str, new: str) -> Path:
    """Rename class `old` to `new` on every side (and the test files labelled by name); returns the new
    training folder. Undoable."""
    found = _editable(dataset)
    if old not in found.classes():
        raise ValueError(f"{found.root} has no class {old} (classes: {', '.join(found.classes())}).")
    new = check_name(new)
    if new == old:
        raise ValueError(f"The class is called {old} already.")
    _refuse_clash(found, new, renaming=old)
    plan = [(side / old, side / new) for side in found.sides() if (side / old).is_dir()]
    plan += [(path, path.with_name(new + path.name[len(old) :])) for path in found.flat_test_files(old)]
    _apply(found, "rename", plan, lambda _: f"class {old} renamed to {new}", unique=False)
    return found.train_dir / new


def remove_class(dataset: str | Path, name: str) -> Edit:
    """Move class `name` (its folders, and test files labelled by name) to the trash. Undoable."""
    found = _editable(dataset)
    if name not in found.classes():
        raise ValueError(f"{found.root} has no class {name} (classes: {', '.join(found.classes())}).")
    items = found.layout.train + found.layout.test if found.layout else []
    pictures = sum(item.label == name for item in items)
    trash = found.journal.new_trash_folder()
    sources = [side / name for side in found.sides() if (side / name).is_dir()] + found.flat_test_files(name)
    plan = [(source, trash / source.relative_to(found.root)) for source in sources]
    return _apply(
        found, "remove-class", plan, lambda _: f"class {name} removed ({_count(pictures)} in the trash)"
    )


def _count(number: int) -> str:
    return f"{number:,} picture{'' if number == 1 else 's'}"


def _apply(
    found: _Dataset,
    action: str,
    plan: Sequence[tuple[Path, Path]],
    summary: Callable[[int], str],
    unique: bool = True,
) -> Edit:
    """Make the moves of `plan` ((from, to) each; with `unique`, a taken target gets a suffix) and record the
    ones made; `EditIncomplete`, after recording, naming any that failed."""
    journal = found.journal
    done: list[Move] = []
    failures: list[tuple[str, str]] = []
    with journal.locked():
        for source, target in plan:
            final = free_path(target) if unique else target
            try:
                move_path(source, final)
            except OSError as error:
                failures.append((found.show(source), failure_reason(error, found.root)))
            else:
                done.append(Move(source, final))
        edit = journal.record(action, done, summary(len(done))) if done else None
    if failures:
        what = edit.describe() if edit else "Nothing was changed"
        raise incomplete(what, failures, edit, "Undo reverses what was done." if edit else "")
    assert edit is not None  # a plan is never empty
    return edit


def _pictures_in(found: _Dataset, pictures: Sequence[str | Path]) -> list[Path]:
    """The pictures as paths inside the dataset (relative ones are relative to its root), in order, once each;
    ValueError for one outside it or a folder. A picture that does not exist is kept: moving it fails and is
    reported with the rest."""
    chosen: list[Path] = []
    for picture in pictures:
        path = Path(picture).expanduser()
        path = path if path.is_absolute() else found.root / path
        forms = (Path(os.path.abspath(path)), Path(os.path.realpath(path.parent)) / path.name)
        inside = next(
            (form for form in forms if form.is_relative_to(found.root) and form != found.root), None
        )
        if inside is None:
            raise ValueError(
                f"{picture} is not in the dataset {found.root}; only its own pictures can be changed."
            )
        if inside.is_dir() and not inside.is_symlink():
            raise ValueError(f"{found.show(inside)} is a folder, not a picture.")
        if inside not in chosen:
            chosen.append(inside)
    if not chosen:
        raise ValueError("Choose at least one picture.")
    return chosen


def move_pictures(dataset: str | Path, pictures: Sequence[str | Path], to_class: str) -> Edit:
    """Move pictures to class `to_class`, each on its own side (training or test folder). Undoable."""
    found = _editable(dataset)
    if to_class not in found.classes():
        raise ValueError(
            f"{found.root} has no class {to_class} (classes: {', '.join(found.classes())}); add it first."
        )
    plan = []
    for path in _pictures_in(found, pictures):
        side = found.side_of(path)
        if side is None or not is_image_name(path):
            raise ValueError(f"{found.show(path)} is not a picture of the training or test folder.")
        parts = path.relative_to(side).parts
        if len(parts) > 1 and parts[0] == to_class:
            continue
        plan.append((path, side / to_class / Path(*parts[1:] if len(parts) > 1 else parts)))
    if not plan:
        raise ValueError(f"The pictures are in {to_class} already.")
    return _apply(found, "move", plan, lambda n: f"{_count(n)} moved to {to_class}")


def remove_pictures(dataset: str | Path, pictures: Sequence[str | Path]) -> Edit:
    """Move pictures (or any files of the dataset) to its trash, under their paths in it. Undoable."""
    found = _editable(dataset)
    trash = found.journal.new_trash_folder()
    plan = [(path, trash / path.relative_to(found.root)) for path in _pictures_in(found, pictures)]
    return _apply(found, "remove", plan, lambda n: f"{_count(n)} removed (in the trash)")


def add_pictures(
    dataset: str | Path, class_name: str, files: Iterable[tuple[str, bytes | Path]]
) -> AddResult:
    """Write each readable picture into the class folder (made if missing) under a name not taken yet; a
    `.zip` is unpacked into the class (`zip_import`'s safety rules). Others are skipped with a reason each.
    Undoable (undo moves the added files to the trash)."""
    found = _editable(dataset)
    name = check_name(class_name)
    if name not in found.classes():
        _refuse_clash(found, name)
    folder = found.train_dir / name
    new_class = [] if folder.is_dir() else [Move(None, folder)]  # made by the first picture; undo removes it
    added: list[Path] = []
    skipped: list[tuple[str, str]] = []
    with found.journal.locked():
        for file_name, content in files:
            try:
                if file_name.lower().endswith(".zip"):
                    skipped += _add_zip(folder, file_name, content, added)
                else:
                    added.append(_add_picture(folder, file_name, content))
            except (ValueError, OSError) as error:
                skipped.append((file_name, str(error)))
        moves = new_class + [Move(None, path) for path in added]
        edit = found.journal.record("add", moves, f"{_count(len(added))} added to {name}") if added else None
    return AddResult(tuple(added), tuple(skipped), edit)


def _picture_bytes(name: str, content: bytes | Path) -> bytes:
    """The bytes of a file that can be a picture: a picture's name, a regular file, not too big, decodable."""
    if isinstance(content, Path):
        image_file_stat(content, _FILE)  # a folder, a missing file, a device, one too big
    if not is_image_name(name):
        raise ImageError(f"{_FILE} is not a picture ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    if isinstance(content, Path):
        content = content.read_bytes()
    if len(content) > MAX_IMAGE_BYTES:
        raise ImageError(f"{_FILE} is more than the {MAX_IMAGE_BYTES // 1_000_000} MB limit per image.")
    open_rgb(content, name=_FILE)  # raises ImageError saying what is wrong
    return content


def _add_picture(folder: Path, name: str, content: bytes | Path) -> Path:
    data = _picture_bytes(name, content)
    base = PurePosixPath(name.replace("\\", "/"))
    target = free_path(folder / f"{base.stem.lstrip('.')[:_STEM_MAX] or 'picture'}{base.suffix.lower()}")
    atomic.write_bytes(target, data)
    return target


def _add_zip(folder: Path, name: str, content: bytes | Path, added: list[Path]) -> list[tuple[str, str]]:
    """Unpack a zip's pictures into `folder` (appending them to `added`); returns the skipped ones."""
    report = import_zip(io.BytesIO(content) if isinstance(content, bytes) else content, name)
    unpacked = paths.datasets_dir() / report.root.relative_to(paths.datasets_dir()).parts[0]
    skipped = [(f"{name}: {member}", reason) for member, reason in report.skipped]
    try:
        for path in sorted(item for item in unpacked.rglob("*") if item.is_file()):
            try:
                _picture_bytes(path.name, path)
            except ImageError as error:
                skipped.append((f"{name}: {path.relative_to(unpacked).as_posix()}", str(error)))
                continue
            target = free_path(folder / path.name)
            move_path(path, target)
            added.append(target)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)  # the zip's unpacked copy, emptied of its pictures
    return skipped


def add_camera_pictures(dataset: str | Path, class_name: str, frames: Sequence[bytes]) -> list[Path]:
    """Save webcam frames into the class as JPEGs named by the time they were saved; one undoable edit."""
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        open_rgb(frame, name="The camera picture").save(buffer, "JPEG", quality=CAMERA_JPEG_QUALITY)
        encoded.append((f"camera-{datetime.now(timezone.utc):%Y%m%d-%H%M%S-%f}.jpg", buffer.getvalue()))
    return list(add_pictures(dataset, class_name, encoded).added)


def add_camera_picture(dataset: str | Path, class_name: str, image_bytes: bytes) -> Path:
    """Save one webcam frame into the class as a JPEG (see `add_camera_pictures`)."""
    return add_camera_pictures(dataset, class_name, [image_bytes])[0]


def history(dataset: str | Path) -> list[Edit]:
    """The dataset's edits, oldest first, each with its state ("done", "undone", "expired")."""
    return _open(dataset).journal.history()


def next_undo(dataset: str | Path) -> Edit | None:
    """The edit `undo` would reverse now (for a button "Undo: 3 pictures moved to homer_simpson"), or None."""
    return _open(dataset).journal.next_undo()


def undo(dataset: str | Path) -> Edit | None:
    """Reverse the latest edit not undone yet; returns it (None when there is none). See `Journal.undo`."""
    return _open(dataset).journal.undo()


def trash_folder(dataset: str | Path) -> Path:
    """Where the dataset's removed files and its journal are kept."""
    return _open(dataset).journal.folder


def trash_size(dataset: str | Path) -> tuple[int, int]:
    """(files, bytes) in the dataset's trash."""
    return _open(dataset).journal.trash_size()


def expiring_edits(dataset: str | Path) -> list[Edit]:
    """The edits that emptying the trash makes impossible to undo (say so before emptying it)."""
    return _open(dataset).journal.expiring()


def empty_trash(dataset: str | Path) -> int:
    """Delete the files in the dataset's trash (the only deletion, of the trash only); returns how many. The
    edits they came from can no longer be undone (`expiring_edits` lists them)."""
    return _open(dataset).journal.empty()
