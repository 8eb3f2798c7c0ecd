"""The dataset check: what a practitioner needs to know about a folder of labelled images before training.

`scan_dataset(root)` detects the layout, counts images per split and class, measures image sizes and class
imbalance, lists every problem with its file and reason (never crashing on bad files), and finds duplicates
within each split and across splits. Across splits they are *leakage*: a test image that is a near-duplicate
of a training image measures memory, not generalisation (the tutorial's test split is made of its training
frames).
Per-file work is cached (`simpsons_core.data.scan_cache`), so a second scan of an unchanged folder is near
instant.

Example:
```python
report = scan_dataset("../shared/datasets/simpsons4-mini")
print(report.to_text())
report.leakage.summary  # "63 of 200 test images are near-duplicates of training images"
```
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simpsons_core.config import BALANCED_WEIGHTS_ABOVE
from simpsons_core.data.folders import DatasetLayout, LabelledImage, Problem, class_problems, detect_layout
from simpsons_core.data.images import CountProgress
from simpsons_core.data.near_duplicates import (
    MAX_HASH_DISTANCE,
    MIN_CORRELATION,
    Pairs,
    connected_components,
    near_duplicate_pairs,
)
from simpsons_core.data.scan_cache import FileInfo, fingerprints_of, inspect_files

TINY_PIXELS = 32  # below this width or height an image carries little to learn from, even at 64 x 64


@dataclass
class SizeStats:
    """Minimum, median and maximum width and height in pixels, over the readable images of a split."""

    width: tuple[int, int, int]
    height: tuple[int, int, int]


@dataclass
class SplitSummary:
    name: str  # "train" | "test"
    folder: str  # relative to the dataset root
    counts: dict[str, int]  # readable images per class
    sizes: SizeStats | None
    formats: dict[str, int]  # e.g. {"JPEG RGB": 1600}
    imbalance: float | None  # largest class count / smallest (classes with images only)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class DuplicatePair:
    first: str  # relative path; the test image when the pair crosses splits
    second: str  # relative path; the training image when the pair crosses splits
    distance: int  # average-hash bits that differ
    mirrored: bool  # the pictures match after a left-right flip
    identical: bool  # byte-identical files
    first_label: str  # the class each image is filed under
    second_label: str


@dataclass
class SplitDuplicates:
    split: str
    pairs: list[DuplicatePair]
    identical_groups: int  # groups of two or more byte-identical files
    identical_files: int
    clusters: int  # near-duplicate clusters of two or more images
    clustered_images: int
    largest_cluster: int


@dataclass
class Leakage:
    test_images: int
    near_duplicates: int  # test images with at least one near-duplicate in training
    identical_hash: int  # of those, with an identical average hash
    identical_files: int  # of those, byte-identical to a training file
    hash_only: int  # test images whose hash alone matched a training image but whose pixels differ
    pairs: list[DuplicatePair]  # every (test, train) near-duplicate pair

    @property
    def summary(self) -> str:
        n, total = self.near_duplicates, self.test_images
        return f"{n:,} of {total:,} test images are near-duplicates of training images"

    def sample_pairs(self, count: int) -> list[DuplicatePair]:
        """Up to `count` pairs to show, one per test image (beside its closest twin), taken from each class in
        turn: `pairs` is sorted by path, so its first few would all come from the first class."""
        closest: dict[str, DuplicatePair] = {}
        for pair in self.pairs:
            if pair.first not in closest or pair.distance < closest[pair.first].distance:
                closest[pair.first] = pair
        by_class: dict[str, list[DuplicatePair]] = defaultdict(list)
        for pair in closest.values():
            by_class[pair.first_label].append(pair)
        rounds = itertools.zip_longest(*(by_class[name] for name in sorted(by_class)))
        return list(itertools.islice((pair for row in rounds for pair in row if pair is not None), count))


@dataclass
class ScanReport:
    root: str
    kind: str
    description: str
    classes: list[str]
    splits: list[SplitSummary]
    problems: list[Problem]
    duplicates: list[SplitDuplicates]
    leakage: Leakage | None
    files: int
    decoded: int  # files decoded by this scan; the others came from the cache
    seconds: float

    def shown(self, path: Path | None) -> str:
        """A problem's path as a user reads it: relative to the dataset root ("" when there is none)."""
        if path is None:
            return ""
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [
            {"kind": p.kind, "path": self.shown(p.path), "message": p.message} for p in self.problems
        ]
        if self.leakage is not None:
            data["leakage"]["summary"] = self.leakage.summary
        return data

    def to_text(self, limit: int | None = 100) -> str:
        """The report as plain text; each list shows at most `limit` lines (None: all)."""
        return "\n".join(_render(self, limit))

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True)
class ScanPace:
    """How far a scan's decoding is and how long it has left, at its rate so far: a cold scan of thousands of
    images takes tens of seconds, and a bare "Scanning..." for that long reads as hung.

    Attributes:
        done, total: files decoded and to decode, as `scan_dataset`'s progress(done, total) reports them.
        elapsed: seconds since the scan started.
    """

    done: int
    total: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    @property
    def rate(self) -> float | None:
        """Files decoded per second; None before the first file or the first instant (no rate yet)."""
        return self.done / self.elapsed if self.done and self.elapsed > 0 else None

    @property
    def seconds_left(self) -> float | None:
        rate = self.rate
        return max(0, self.total - self.done) / rate if rate else None


def class_weights_advice(report: ScanReport) -> str | None:
    """The suggestion to train with balanced class weights when the training split's largest class has more
    than `BALANCED_WEIGHTS_ABOVE` times the images of its smallest; else None. (The scan text and the Dataset
    page show it.)"""
    imbalance = report.splits[0].imbalance if report.splits else None
    if imbalance is None or imbalance <= BALANCED_WEIGHTS_ABOVE:
        return None
    return (
        f"The largest training class has {imbalance:.2f} times the images of the smallest (above "
        f"{BALANCED_WEIGHTS_ABOVE}): consider balanced class weights (`train --class-weights balanced`, or "
        "Class weights: balanced on the Train page), so each class counts as much in the loss."
    )


def scan_dataset(root: str | Path, progress: CountProgress | None = None) -> ScanReport:
    """Scan the dataset at `root`; ValueError if no layout with labelled images is found there.

    Args:
        root: the dataset folder.
        progress: called as progress(done, total) while files are decoded (not for cached files).
    """
    started = time.perf_counter()
    layout = detect_layout(root)
    items = layout.train + layout.test
    inspection = inspect_files(layout.root, [item.path for item in items], progress)
    problems = list(layout.problems)
    for item, info in zip(items, inspection.infos, strict=True):
        problems.extend(_file_problems(item, info))
    train_infos, test_infos = inspection.infos[: len(layout.train)], inspection.infos[len(layout.train) :]
    splits = [_summarise("train", layout, layout.train, train_infos)]
    problems.extend(class_problems(layout, splits[0].counts))  # what would stop a run from starting
    duplicates = [_within_split("train", layout, layout.train, train_infos, problems)]
    leakage = None
    if layout.test_dir is not None:
        splits.append(_summarise("test", layout, layout.test, test_infos))
        duplicates.append(_within_split("test", layout, layout.test, test_infos, problems))
        leakage = _leakage(layout, test_infos, train_infos, problems)
    return ScanReport(
        root=str(layout.root),
        kind=layout.kind,
        description=layout.description,
        classes=layout.classes,
        splits=splits,
        problems=problems,
        duplicates=duplicates,
        leakage=leakage,
        files=len(items),
        decoded=inspection.decoded,
        seconds=round(time.perf_counter() - started, 3),
    )


def _file_problems(item: LabelledImage, info: FileInfo) -> list[Problem]:
    if not info.ok:
        return [Problem("unreadable", item.path, info.error)]
    if min(info.width, info.height) < TINY_PIXELS:
        message = (
            f"tiny image: {info.width}x{info.height} pixels (below {TINY_PIXELS}); it carries little detail"
        )
        return [Problem("tiny", item.path, message)]
    return []


def _summarise(
    name: str, layout: DatasetLayout, items: list[LabelledImage], infos: list[FileInfo]
) -> SplitSummary:
    readable = [(item, info) for item, info in zip(items, infos, strict=True) if info.ok]
    counts = dict.fromkeys(layout.classes, 0) | Counter(item.label for item, _ in readable)
    present = [count for count in counts.values() if count]
    sizes = None
    if readable:
        widths = np.array([info.width for _, info in readable])
        heights = np.array([info.height for _, info in readable])
        sizes = SizeStats(_min_median_max(widths), _min_median_max(heights))
    folder = layout.test_dir if name == "test" else layout.train_dir
    return SplitSummary(
        name=name,
        folder=layout.relative(folder) if folder else "",
        counts=dict(counts),
        sizes=sizes,
        formats=dict(Counter(f"{info.format} {info.mode}" for _, info in readable).most_common()),
        imbalance=round(max(present) / min(present), 2) if present else None,
    )


def _min_median_max(values: np.ndarray) -> tuple[int, int, int]:
    return int(values.min()), int(np.median(values)), int(values.max())


def _within_split(
    name: str,
    layout: DatasetLayout,
    items: list[LabelledImage],
    infos: list[FileInfo],
    problems: list[Problem],
) -> SplitDuplicates:
    pairs, _ = near_duplicate_pairs(fingerprints_of(infos))
    listed = _listed_pairs(layout, items, items, pairs, problems, f"in the {name} split")
    sizes = np.bincount(connected_components(len(items), pairs.i, pairs.j), minlength=1)
    identical = connected_components(len(items), pairs.i[pairs.identical], pairs.j[pairs.identical])
    identical_sizes = np.bincount(identical, minlength=1)
    return SplitDuplicates(
        split=name,
        pairs=listed,
        identical_groups=int((identical_sizes > 1).sum()),
        identical_files=int(identical_sizes[identical_sizes > 1].sum()),
        clusters=int((sizes > 1).sum()),
        clustered_images=int(sizes[sizes > 1].sum()),
        largest_cluster=int(sizes.max()),
    )


def _leakage(
    layout: DatasetLayout, test_infos: list[FileInfo], train_infos: list[FileInfo], problems: list[Problem]
) -> Leakage:
    pairs, hash_only = near_duplicate_pairs(fingerprints_of(test_infos), fingerprints_of(train_infos))
    listed = _listed_pairs(layout, layout.test, layout.train, pairs, problems, "across splits")
    return Leakage(
        test_images=len(test_infos),
        near_duplicates=len(np.unique(pairs.i)),
        identical_hash=len(np.unique(pairs.i[pairs.distance == 0])),
        identical_files=len(np.unique(pairs.i[pairs.identical])),
        hash_only=int(hash_only.sum()),
        pairs=sorted(listed, key=lambda p: (p.first, p.distance, p.second)),
    )


def _listed_pairs(
    layout: DatasetLayout,
    first: list[LabelledImage],
    second: list[LabelledImage],
    pairs: Pairs,
    problems: list[Problem],
    where: str,
) -> list[DuplicatePair]:
    """The pairs with paths a user reads; a byte-identical file under two labels is also a problem, reported
    once per copy (within a split, the later file; across splits, the test file).

    Only byte-identical files count as a label conflict: a near-duplicate match is (rarely) two different
    pictures, and on TV frames those are often two characters in the same setting.
    """
    listed = []
    conflicted: set[Path] = set()
    for i, j, distance, mirrored, identical in zip(
        pairs.i.tolist(),
        pairs.j.tolist(),
        pairs.distance.tolist(),
        pairs.mirrored.tolist(),
        pairs.identical.tolist(),
        strict=True,
    ):
        a, b = first[i], second[j]
        listed.append(
            DuplicatePair(
                first=layout.relative(a.path),
                second=layout.relative(b.path),
                distance=distance,
                mirrored=mirrored,
                identical=identical,
                first_label=a.label,
                second_label=b.label,
            )
        )
        copy, original = (b, a) if first is second else (a, b)
        if identical and a.label != b.label and copy.path not in conflicted:
            conflicted.add(copy.path)
            message = (
                f"the same file under two labels {where}: {copy.label} here, "
                f"{original.label} as {layout.relative(original.path)}"
            )
            problems.append(Problem("label-conflict", copy.path, message))
    return listed


# ---- text rendering ----


def _render(report: ScanReport, limit: int | None) -> list[str]:
    lines = [
        f"Dataset: {report.root}",
        f"Layout:  {report.kind}. {report.description}",
        f"Scanned {report.files:,} images in {report.seconds:.1f} s "
        f"({report.decoded:,} decoded, {report.files - report.decoded:,} from the cache).",
        "",
    ]
    lines += _render_counts(report)
    lines += _render_leakage(report.leakage, limit)
    for duplicates in report.duplicates:
        lines += _render_duplicates(duplicates, limit)
    lines += _render_problems(report, limit)
    lines.append(
        f"Near-duplicates: 8x8 average hashes within {MAX_HASH_DISTANCE} bits (mirrored too) whose 16x16 "
        f"colour thumbnails correlate >= {MIN_CORRELATION}."
    )
    return lines


def _render_counts(report: ScanReport) -> list[str]:
    splits = report.splits
    classes = list(dict.fromkeys(name for split in splits for name in split.counts))
    width = max([len("Images per class"), *(len(name) + 2 for name in classes)])
    header = "Images per class".ljust(width) + "".join(f"{split.name:>9}" for split in splits)
    lines = [header]
    for name in classes:
        lines.append(
            f"  {name}".ljust(width) + "".join(f"{split.counts.get(name, 0):>9,}" for split in splits)
        )
    lines.append("  total".ljust(width) + "".join(f"{split.total:>9,}" for split in splits))
    ratios = ", ".join(f"{s.name} {s.imbalance:.2f}" if s.imbalance else f"{s.name} -" for s in splits)
    lines.append(f"Class imbalance (largest / smallest class): {ratios}")
    if advice := class_weights_advice(report):
        lines.append(advice)
    lines.append("")
    lines.append("Image size (pixels)   width min / median / max   height min / median / max")
    for split in splits:
        if split.sizes:
            w, h = split.sizes.width, split.sizes.height
            lines.append(
                f"  {split.name:<20}{w[0]:>6} / {w[1]:>4} / {w[2]:>5}{h[0]:>17} / {h[1]:>4} / {h[2]:>5}"
            )
    formats = "; ".join(f"{s.name} " + ", ".join(f"{k} {v:,}" for k, v in s.formats.items()) for s in splits)
    return [*lines, f"Formats: {formats}", ""]


def _render_leakage(leakage: Leakage | None, limit: int | None) -> list[str]:
    if leakage is None:
        return [
            "Leakage: no test split; validation is held out from training, keeping near-duplicates together.",
            "",
        ]
    lines = [
        f"Leakage: {leakage.summary} ({leakage.identical_hash:,} with an identical hash, "
        f"{leakage.identical_files:,} byte-identical files)."
    ]
    if leakage.hash_only:
        lines.append(
            f"  {leakage.hash_only:,} more test images have a hash within {MAX_HASH_DISTANCE} bits of a "
            "training image but different pixels: not counted."
        )
    if leakage.near_duplicates:
        lines.append("  Accuracy on this test split overstates how the model does on new pictures.")
    best: dict[str, list[DuplicatePair]] = defaultdict(list)
    for pair in leakage.pairs:
        best[pair.first].append(pair)
    rows = [
        _pair_line(pairs[0], f" (+{len(pairs) - 1} more)" if len(pairs) > 1 else "")
        for pairs in best.values()
    ]
    return lines + _limited(rows, limit) + [""]


def _render_duplicates(duplicates: SplitDuplicates, limit: int | None) -> list[str]:
    if not duplicates.pairs:
        return [f"Duplicates within {duplicates.split}: none.", ""]
    identical = (
        f" ({duplicates.identical_files:,} byte-identical files in {duplicates.identical_groups:,} groups)"
        if duplicates.identical_groups
        else ""
    )
    lines = [
        f"Duplicates within {duplicates.split}: {len(duplicates.pairs):,} near-duplicate pairs{identical}, "
        f"{duplicates.clusters:,} clusters holding {duplicates.clustered_images:,} images "
        f"(largest {duplicates.largest_cluster})."
    ]
    return lines + _limited([_pair_line(pair) for pair in duplicates.pairs], limit) + [""]


def _render_problems(report: ScanReport, limit: int | None) -> list[str]:
    if not report.problems:
        return ["Problems: none found.", ""]
    counts = Counter(p.kind for p in report.problems)
    lines = [
        f"Problems ({len(report.problems):,}: " + ", ".join(f"{n:,} {k}" for k, n in counts.items()) + "):"
    ]
    rows = [
        f"  {p.kind:<15}{report.shown(p.path) + ': ' if p.path else ''}{p.message}" for p in report.problems
    ]
    return lines + _limited(rows, limit) + [""]


def _pair_line(pair: DuplicatePair, suffix: str = "") -> str:
    how = "identical file" if pair.identical else f"{pair.distance} bit{'' if pair.distance == 1 else 's'}"
    return f"  {pair.first}  ~  {pair.second}  ({how}{', mirrored' if pair.mirrored else ''}){suffix}"


def _limited(rows: list[str], limit: int | None) -> list[str]:
    if limit is None or len(rows) <= limit:
        return rows
    return [*rows[:limit], f"  ... and {len(rows) - limit:,} more (--limit 0 or --json lists all)"]
