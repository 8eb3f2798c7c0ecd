"""Finding the images and their labels in a dataset folder, whichever of the common layouts it uses.

Layouts, tried in this order:
- tutorial: `simpsons_trainset/<class>/` and `simpson_testset/` (the Keras tutorial's folders);
- train-test: `train/<class>/` and `val/` or `test/` (also `training/`, `validation/`, `valid/`, `testing/`);
- single-folder: `<class>/` subfolders only; validation is carved out later by fraction and seed.
A test folder may hold class subfolders or lie flat with labels in the file names (`bart_simpson_12.jpg`, as
the Kaggle test set ships): the longest class name the file name starts with wins. A folder holding one
subfolder and no images (an unzipped archive's wrapper) is looked through, unless that subfolder holds images
itself: then it is the dataset's one class.

Detection never fails on untidy data: non-image files, empty class folders and images without a label become
`Problem`s for the scan to report. `training_blockers` says which of them, with the readable images per class,
make training impossible or silently wrong (the scan lists them; a run refuses to start on them).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from simpsons_core.data.images import IMAGE_SUFFIXES, is_image_name

TUTORIAL_FOLDERS = ("simpsons_trainset", "simpson_testset")
TRAIN_NAMES = ("train", "training")
TEST_NAMES = ("test", "testing", "val", "valid", "validation")  # the first one present is the test split
# Operating-system litter that is nobody's data; hidden files and folders (".DS_Store", "._x.jpg") too.
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
MAX_WRAPPER_DEPTH = 3
# A class needs an image to learn from and one to validate on.
MIN_IMAGES_PER_CLASS = 2


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str  # class name: the folder name, or parsed from a flat file name like bart_simpson_12.jpg


@dataclass(frozen=True)
class Problem:
    """Something to fix or know before training, tied to a file or folder when there is one.

    `kind` is one of "non-image", "empty-class", "unlabelled", "unreadable", "tiny", "missing-class",
    "label-conflict", and the ones that block training (`class_problems`): "one-class", "unreadable-class",
    "few-images".
    """

    kind: str
    path: Path | None
    message: str


@dataclass
class DatasetLayout:
    root: Path
    kind: str  # "tutorial" | "train-test" | "single-folder"
    description: str  # one sentence: which layout was found and which folders are train and test
    train: list[LabelledImage]
    test: list[LabelledImage]  # [] when the dataset has no test split
    classes: list[str]  # sorted class names of the training split (the model's output order)
    train_dir: Path
    test_dir: Path | None
    flat_test: bool = False  # the test folder's files lie flat and are labelled by name
    problems: list[Problem] = field(default_factory=list)

    def samples(self, per_class: int) -> dict[str, list[LabelledImage]]:
        """The first `per_class` training images of each class, in class order (what previews show: the same
        pictures on every visit, so a change of settings is what changes the picture)."""
        found: dict[str, list[LabelledImage]] = {name: [] for name in self.classes}
        for item in self.train:
            if len(found[item.label]) < per_class:
                found[item.label].append(item)
        return found

    def relative(self, path: Path) -> str:
        """`path` as shown to a user: relative to the dataset root."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def detect_layout(root: str | Path) -> DatasetLayout:
    """Find the dataset's splits, classes and labelled images; ValueError saying why when there are none."""
    given = dataset_folder(root)
    folder = given.resolve()
    for _ in range(MAX_WRAPPER_DEPTH):
        subfolders, files = _listing(folder)
        if (
            len(subfolders) == 1
            and not _any_image(files)
            and not _split_folders(folder)
            and not _any_image(_listing(subfolders[0])[1])  # else it is a class folder: a one-class dataset
        ):
            folder = subfolders[0]
        else:
            break
    train_dir, test_dir, kind = _split_folders(folder) or (folder, None, "single-folder")
    builder = _Builder(folder)
    train = builder.class_folders(train_dir, split="train", files_are_docs=kind == "single-folder")
    classes = sorted({item.label for item in train})
    if not classes:
        raise ValueError(_nothing_labelled(given, train_dir))
    test: list[LabelledImage] = []
    flat_test = False
    if test_dir is not None:
        test = builder.class_folders(test_dir, split="test", files_are_docs=False, flat_classes=classes)
        flat_test = any(item.path.parent == test_dir for item in test)
    builder.missing_classes(classes, sorted({item.label for item in test}), test_dir)
    return DatasetLayout(
        root=folder,
        kind=kind,
        description=_describe(kind, folder, train_dir, test_dir, flat_test),
        train=train,
        test=test,
        classes=classes,
        train_dir=train_dir,
        test_dir=test_dir,
        flat_test=flat_test,
        problems=builder.problems,
    )


def dataset_folder(path: str | Path) -> Path:
    """`path`, with ~ expanded, when it is a folder; ValueError saying what it is instead."""
    given = Path(path).expanduser()
    if given.is_dir():
        return given
    what = "it is a file" if given.exists() else "it does not exist"
    raise ValueError(f"{given} is not a folder: {what}. Point to the folder that holds the class subfolders.")


def _nothing_labelled(given: Path, train_dir: Path) -> str:
    """Why no image of `train_dir` has a label, for a folder that is no dataset."""
    subfolders, files = _listing(train_dir)
    where = "the folder" if train_dir == given.resolve() else str(train_dir)
    if not subfolders and not files:
        detail = f"{where} is empty"
    elif not subfolders and _any_image(files):
        detail = (
            f"{where} holds images but no class folders (is it the folder of one class? A classifier needs "
            "a folder per class, at least two)"
        )
    elif not subfolders:
        detail = f"{where} holds neither class folders nor images"
    else:
        detail = f"none of the folders in {where} holds an image"
    return (
        f"No labelled images found in {given}: {detail}. Expected class subfolders "
        f"(e.g. {given}/bart_simpson/*.jpg), simpsons_trainset/ + simpson_testset/, or train/ + test/."
    )


def class_problems(layout: DatasetLayout, readable: Mapping[str, int]) -> list[Problem]:
    """What makes the training classes unusable, given the readable training images per class.

    A class without a readable image would be an output the model never sees (and a perfect validation
    score for it), one image cannot be split, and one class is nothing to tell apart.
    """
    problems = []
    if len(layout.classes) == 1:
        where = "the dataset" if layout.train_dir == layout.root else f"{layout.relative(layout.train_dir)}/"
        problems.append(
            Problem(
                "one-class",
                None,
                f"{where} holds only one class ({layout.classes[0]}); a classifier needs at least two",
            )
        )
    files = Counter(item.label for item in layout.train)
    for name in layout.classes:
        count = readable.get(name, 0)
        if count == 0:
            message = f"class {name} has no readable image (none of its {files[name]} files can be used)"
            problems.append(Problem("unreadable-class", layout.train_dir / name, message))
        elif count < MIN_IMAGES_PER_CLASS:
            message = (
                f"class {name} has only {count} readable image; a class needs at least "
                f"{MIN_IMAGES_PER_CLASS} (one to learn from, one to validate on)"
            )
            problems.append(Problem("few-images", layout.train_dir / name, message))
    return problems


def training_blockers(layout: DatasetLayout, readable: Mapping[str, int]) -> list[Problem]:
    """The problems a run must not start with: `class_problems`, and empty training class folders (a class
    the user meant to train would be missing from the model without a word)."""
    empty = [
        problem
        for problem in layout.problems
        if problem.kind == "empty-class" and problem.path and problem.path.parent == layout.train_dir
    ]
    return empty + class_problems(layout, readable)


def label_from_name(file_name: str, classes: list[str]) -> str | None:
    """The longest class name `file_name` starts with, followed by a non-letter or the end; else None."""
    stem = Path(file_name).stem.lower()
    for name in sorted(classes, key=len, reverse=True):
        rest = stem[len(name) :]
        if stem.startswith(name.lower()) and (not rest or not rest[0].isalpha()):
            return name
    return None


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in IGNORED_NAMES


def _any_image(files: list[Path]) -> bool:
    return any(is_image_name(path) for path in files)


def _listing(folder: Path) -> tuple[list[Path], list[Path]]:
    """(subfolders, files) of `folder`, visible ones only, sorted by name."""
    subfolders, files = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if _visible(entry.name):
                (subfolders if entry.is_dir() else files).append(Path(entry.path))
    return sorted(subfolders), sorted(files)


def _child(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first of `names` (case-insensitive) that is a subfolder of `folder`."""
    present = {path.name.lower(): path for path in _listing(folder)[0]}
    return next((present[name] for name in names if name in present), None)


def _split_folders(folder: Path) -> tuple[Path, Path | None, str] | None:
    tutorial_train = _child(folder, TUTORIAL_FOLDERS[:1])
    if tutorial_train is not None:
        return tutorial_train, _child(folder, TUTORIAL_FOLDERS[1:]), "tutorial"
    train = _child(folder, TRAIN_NAMES)
    if train is not None:
        return train, _child(folder, TEST_NAMES), "train-test"
    return None


def _walk_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(images, other files) below `folder`, sorted, following symlinks but never the same folder twice."""
    seen: set[str] = set()
    found: list[str] = []  # strings until sorted and split: pathlib is slow on thousands of paths
    for current, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if _visible(d)]
        found.extend(os.path.join(current, f) for f in files if _visible(f))
    found.sort()
    is_image = [os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES for path in found]
    images = [Path(path) for path, image in zip(found, is_image, strict=True) if image]
    return images, [Path(path) for path, image in zip(found, is_image, strict=True) if not image]


class _Builder:
    """Collects labelled images and the problems met on the way."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []

    def _problem(self, kind: str, path: Path | None, message: str) -> None:
        self.problems.append(Problem(kind, path, message))

    def class_folders(
        self, split_dir: Path, split: str, files_are_docs: bool, flat_classes: list[str] | None = None
    ) -> list[LabelledImage]:
        """Images of `split_dir/<class>/**`; loose files are labelled by name when `flat_classes` is given."""
        subfolders, files = _listing(split_dir)
        items: list[LabelledImage] = []
        for class_dir in subfolders:
            images, others = _walk_files(class_dir)
            self._non_images(others)
            if not images:
                self._problem(
                    "empty-class",
                    class_dir,
                    f"class folder {class_dir.name}/ of the {split} split has no images",
                )
            items.extend(LabelledImage(path, class_dir.name) for path in images)
        for path in files:
            if not is_image_name(path):
                if not files_are_docs:
                    self._non_images([path])
                continue
            label = label_from_name(path.name, flat_classes) if flat_classes else None
            if label is None:
                reason = (
                    "its name starts with no known class name"
                    if flat_classes
                    else "it is not in a class folder"
                )
                self._problem("unlabelled", path, f"image left out of the {split} split: {reason}")
            else:
                items.append(LabelledImage(path, label))
        return items

    def _non_images(self, files) -> None:
        for path in files:
            suffix = path.suffix or "no extension"
            self._problem("non-image", path, f"not an image file ({suffix}); ignored")

    def missing_classes(self, train: list[str], test: list[str], test_dir: Path | None) -> None:
        if test_dir is None:
            return
        for name in sorted(set(train) - set(test)):
            self._problem(
                "missing-class", None, f"class {name} is in the training split but has no test images"
            )
        for name in sorted(set(test) - set(train)):
            self._problem(
                "missing-class",
                None,
                f"class {name} has test images but none for training: the model cannot learn it",
            )


def _describe(kind: str, root: Path, train_dir: Path, test_dir: Path | None, flat_test: bool) -> str:
    def show(path: Path) -> str:
        return f"{path.relative_to(root).as_posix()}/" if path != root else ""

    names = {
        "tutorial": "the tutorial's layout",
        "train-test": "a train/test layout",
        "single-folder": "class folders",
    }
    text = f"Found {names[kind]}: training images in {show(train_dir)}<class>/"
    if test_dir is None:
        return text + ", no test split (validation is held out from training by fraction and seed)."
    if flat_test:
        return text + f", test images in {show(test_dir)} labelled by file name (e.g. bart_simpson_12.jpg)."
    return text + f", test images in {show(test_dir)}<class>/."
