"""The leak-free validation split: whole near-duplicate clusters, stratified by class, deterministic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simpsons_core.config import TrainConfig
from simpsons_core.data.demo import CLASSES, draw_scene
from simpsons_core.data.folders import detect_layout
from simpsons_core.data.scan import scan_dataset
from simpsons_core.data.splits import (
    Overlap,
    grouped_stratified_split,
    near_duplicate_clusters,
    overlap_with_training,
    split_for_training,
)


def _random_groups(seed: int) -> tuple[list[str], list[int]]:
    """300 items of 3 unbalanced labels in groups of 1-4 (mostly singletons), sometimes mixing labels."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    group = 0
    while len(labels) < 300:
        size = int(rng.choice([1, 1, 1, 2, 3, 4]))
        label = str(rng.choice(["a", "a", "a", "b", "b", "c"]))
        for _ in range(size):
            labels.append(label if rng.random() > 0.1 else "c")
            groups.append(group)
        group += 1
    return labels, groups


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_group_straddles_and_each_label_is_within_one_of_its_share(seed: int) -> None:
    labels, groups = _random_groups(seed)
    held_out = grouped_stratified_split(labels, groups, fraction=0.2, seed=seed)
    for group in set(groups):
        sides = {bool(held_out[k]) for k, g in enumerate(groups) if g == group}
        assert len(sides) == 1
    for label, count in Counter(labels).items():
        taken = sum(1 for k, name in enumerate(labels) if name == label and held_out[k])
        assert abs(taken - count * 0.2) <= 1


def test_same_seed_same_split_other_seed_other_split() -> None:
    labels, groups = _random_groups(0)
    first = grouped_stratified_split(labels, groups, 0.25, seed=7)
    assert np.array_equal(first, grouped_stratified_split(labels, groups, 0.25, seed=7))
    assert not np.array_equal(first, grouped_stratified_split(labels, groups, 0.25, seed=8))


@pytest.fixture
def clustered_dataset(tmp_path: Path) -> Path:
    """Tutorial layout: per class 10 distinct pictures plus, for 4 of them, a resized, re-encoded or mirrored
    copy; the test split holds a twin of one training picture and a new picture."""
    root = tmp_path / "clustered"
    for c, name in enumerate(CLASSES):
        folder = root / "simpsons_trainset" / name
        folder.mkdir(parents=True)
        for k in range(10):
            image = draw_scene(name, np.random.default_rng([c, k, 42]), 64)
            image.save(folder / f"pic_{k:04d}.jpg", quality=90)
            if k < 4:
                twin = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if k % 2 else image.resize((50, 50))
                twin.save(folder / f"pic_{k:04d}_twin.jpg", quality=75)
    test = root / "simpson_testset" / "bart_simpson"
    test.mkdir(parents=True)
    Image.open(root / "simpsons_trainset" / "bart_simpson" / "pic_0005.jpg").resize((56, 56)).save(
        test / "bart_simpson_0.jpg"
    )
    draw_scene("bart_simpson", np.random.default_rng(777), 64).save(test / "bart_simpson_1.jpg")
    return root


def test_twins_form_clusters_that_stay_on_one_side(workspace: Path, clustered_dataset: Path) -> None:
    layout = detect_layout(clustered_dataset)
    clusters = near_duplicate_clusters(layout)
    by_name = {item.path.stem + item.label: clusters[k] for k, item in enumerate(layout.train)}
    for name in CLASSES:
        for k in range(4):
            assert by_name[f"pic_{k:04d}{name}"] == by_name[f"pic_{k:04d}_twin{name}"]
    assert len(set(clusters.tolist())) == len(layout.train) - 16  # no other picture joined a cluster

    for seed in (0, 1, 2):
        config = TrainConfig(validation="split", validation_fraction=0.3, seed=seed)
        train, validation = split_for_training(layout, config)
        assert len(train) + len(validation) == len(layout.train)
        validation_paths = {item.path for item in validation}
        side = {}
        for k, item in enumerate(layout.train):
            assert side.setdefault(clusters[k], item.path in validation_paths) == (
                item.path in validation_paths
            )
        for name in CLASSES:
            assert abs(sum(item.label == name for item in validation) - 14 * 0.3) <= 1
        assert split_for_training(layout, config) == (train, validation)


def test_a_split_caches_training_images_for_the_scan(workspace: Path, clustered_dataset: Path) -> None:
    layout = detect_layout(clustered_dataset)
    split_for_training(layout, TrainConfig())
    report = scan_dataset(clustered_dataset)
    assert report.decoded == len(layout.test)  # only what the split did not need
    split_for_training(layout, TrainConfig())
    assert scan_dataset(clustered_dataset).decoded == 0


def test_validation_from_the_test_split(workspace: Path, clustered_dataset: Path) -> None:
    layout = detect_layout(clustered_dataset)
    train, validation = split_for_training(layout, TrainConfig(validation="test"))
    assert (train, validation) == (layout.train, layout.test)


def test_validation_from_a_missing_test_split_is_a_clear_error(workspace: Path, tmp_path: Path) -> None:
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (40, 40), "blue").save(tmp_path / name / "0.png")
    with pytest.raises(ValueError, match="has no test split"):
        split_for_training(detect_layout(tmp_path), TrainConfig(validation="test"))


def test_a_leaky_test_split_is_labelled(workspace: Path, clustered_dataset: Path, tiny_dataset: Path) -> None:
    overlap = overlap_with_training(detect_layout(clustered_dataset))
    assert overlap == Overlap(1, 2)
    assert overlap.phrase == "may overlap training: 1 of 2 near-duplicates"
    clean = overlap_with_training(detect_layout(tiny_dataset))
    assert clean == (0, 24)
    assert clean.phrase == "no overlap with training found (0 of 24 near-duplicates)"


def test_a_class_that_is_one_burst_of_frames_still_gets_validation_with_a_warning(
    workspace: Path, tmp_path: Path
) -> None:
    """Webcam bursts are near-duplicates frame to frame: whole-cluster splitting alone would hold out none."""
    root = tmp_path / "webcam"
    for c, name in enumerate(("left", "right")):
        scene = draw_scene(CLASSES[c], np.random.default_rng(c), 64)
        (root / name).mkdir(parents=True)
        for k in range(6):  # the same view, a little sensor noise per frame
            noise = np.random.default_rng([c, k]).integers(-4, 5, (64, 64, 3))
            frame = np.clip(np.asarray(scene, np.int16) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(frame).save(root / name / f"camera-{k:02d}.jpg", quality=90)
    layout = detect_layout(root)
    clusters = near_duplicate_clusters(layout).tolist()
    assert len(set(clusters[:6])) == len(set(clusters[6:])) == 1  # each class is one cluster
    notes: list[str] = []
    train, validation = split_for_training(layout, TrainConfig(validation_fraction=0.2), notes=notes)
    assert sorted((item.label, item.path.name) for item in validation) == [
        ("left", "camera-05.jpg"),
        ("right", "camera-05.jpg"),
    ]
    assert len(train) == 10
    [note] = notes
    assert note.startswith("Validation overlaps training for left, right: each of these classes is one group")
