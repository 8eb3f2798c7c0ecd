"""Validation images the model has never seen, not even as a re-encoded, resized or mirrored twin.

A random split of a folder of TV frames puts copies of the same frame on both sides, so validation accuracy
measures memory. `split_for_training` holds out whole near-duplicate clusters (the scan's, from cached
fingerprints), stratified by class: each class's validation count is within one image of its share whenever
the clusters allow it. The dataset's own test split may overlap training; `overlap_with_training` says how
much, in the words pages and commands use. `check_trainable` refuses a dataset no split can make a classifier
from, before a run starts.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from simpsons_core.config import TrainConfig
from simpsons_core.data.folders import DatasetLayout, LabelledImage, training_blockers
from simpsons_core.data.images import CountProgress
from simpsons_core.data.near_duplicates import connected_components, near_duplicate_pairs
from simpsons_core.data.scan_cache import fingerprints_of, inspect_files

_BLOCKERS_SHOWN = 5


def check_trainable(layout: DatasetLayout, progress: CountProgress | None = None) -> None:
    """ValueError naming what makes `layout` untrainable (`folders.training_blockers`), or None.

    Called before a run folder is made, so that a run which would fail after decoding, or train a class from
    no images, never starts. Each training image is read through the scan cache, so a scanned dataset costs
    nothing here and the split that follows reads nothing again.
    """
    infos = inspect_files(layout.root, [item.path for item in layout.train], progress).infos
    readable = Counter(item.label for item, info in zip(layout.train, infos, strict=True) if info.ok)
    blockers = training_blockers(layout, readable)
    if not blockers:
        return
    shown = "; ".join(problem.message for problem in blockers[:_BLOCKERS_SHOWN])
    more = f"; and {len(blockers) - _BLOCKERS_SHOWN} more" if len(blockers) > _BLOCKERS_SHOWN else ""
    raise ValueError(f"{layout.root} cannot be trained on: {shown}{more}.")


def split_for_training(
    layout: DatasetLayout,
    config: TrainConfig,
    progress: CountProgress | None = None,
    notes: list[str] | None = None,
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """(training images, validation images) for `config.validation`.

    "test" returns the dataset's own splits; "split" holds out `config.validation_fraction` of the training
    folder with `config.seed`, keeping near-duplicate clusters on one side. A class whose every image sits in
    clusters too big to hold out (a webcam burst: each frame is a near-duplicate of the next) would get no
    validation image at all; it gets its last images in file order instead (for camera pictures, named by
    time, the last taken), and a sentence saying its validation overlaps training is appended to `notes`.
    """
    if config.validation == "test":
        if not layout.test:
            raise ValueError(
                f"{layout.root} has no test split; validate on a held-out part of training instead "
                "(validation 'split')."
            )
        return list(layout.train), list(layout.test)
    clusters = near_duplicate_clusters(layout, progress)
    labels = [item.label for item in layout.train]
    held_out = grouped_stratified_split(labels, clusters, config.validation_fraction, config.seed)
    overlapping = hold_out_last_of_unsplit_labels(labels, held_out, config.validation_fraction)
    if overlapping and notes is not None:
        notes.append(
            f"Validation overlaps training for {', '.join(overlapping)}: each of these classes is one group "
            "of near-duplicates (a webcam burst, frames of one shot), so its last pictures were held out and "
            "its validation accuracy reads high. Add pictures taken elsewhere for an honest figure."
        )
    train = [item for item, out in zip(layout.train, held_out, strict=True) if not out]
    validation = [item for item, out in zip(layout.train, held_out, strict=True) if out]
    return train, validation


def near_duplicate_clusters(layout: DatasetLayout, progress: CountProgress | None = None) -> np.ndarray:
    """Cluster label per training image: near-duplicates (byte-identical files included) share one."""
    infos = inspect_files(layout.root, [item.path for item in layout.train], progress).infos
    pairs, _ = near_duplicate_pairs(fingerprints_of(infos))
    return connected_components(len(infos), pairs.i, pairs.j)


def grouped_stratified_split(
    labels: Sequence[str], groups: Sequence[int], fraction: float, seed: int
) -> np.ndarray:
    """Boolean mask of the items to hold out: whole groups, about `fraction` of each label.

    Groups are visited in an order shuffled by `seed`; a group is held out when that keeps every label it
    contains at or under its target (the label's count times `fraction`, rounded). Singletons fill the last
    places, so each label lands exactly on its target unless its images sit in groups too big to fit.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1, not {fraction}.")
    members: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[int(group)].append(index)
    target = {label: math.floor(count * fraction + 0.5) for label, count in Counter(labels).items()}
    taken: Counter[str] = Counter()
    held_out = np.zeros(len(labels), dtype=bool)
    ordered = sorted(members.values())
    for position in np.random.default_rng(seed).permutation(len(ordered)):
        indices = ordered[position]
        need = Counter(labels[i] for i in indices)
        if all(taken[label] + n <= target[label] for label, n in need.items()):
            taken.update(need)
            held_out[indices] = True
    return held_out


def hold_out_last_of_unsplit_labels(
    labels: Sequence[str], held_out: np.ndarray, fraction: float
) -> list[str]:
    """Hold out (in place) the last images, in order, of each label that got no validation image although its
    share rounds to at least one; returns those labels, sorted."""
    indices: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        indices[label].append(index)
    unsplit = []
    for label, members in sorted(indices.items()):
        target = math.floor(len(members) * fraction + 0.5)
        if target and not held_out[members].any():
            held_out[members[-target:]] = True
            unsplit.append(label)
    return unsplit


class Overlap(NamedTuple):
    """How many of the dataset's test images are near-duplicates of its training images."""

    near_duplicates: int
    test_images: int

    @property
    def phrase(self) -> str:
        if self.near_duplicates == 0:
            return f"no overlap with training found (0 of {self.test_images} near-duplicates)"
        return f"may overlap training: {self.near_duplicates} of {self.test_images} near-duplicates"


def overlap_with_training(layout: DatasetLayout, progress: CountProgress | None = None) -> Overlap:
    """The test split's overlap with training, from cached fingerprints (fast after a scan)."""
    if not layout.test:
        return Overlap(0, 0)
    items = layout.test + layout.train
    infos = inspect_files(layout.root, [item.path for item in items], progress).infos
    test, train = fingerprints_of(infos[: len(layout.test)]), fingerprints_of(infos[len(layout.test) :])
    pairs, _ = near_duplicate_pairs(test, train)
    return Overlap(len(np.unique(pairs.i)), len(layout.test))
