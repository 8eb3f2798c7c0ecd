"""The dataset scan: counts, sizes, every problem kind, duplicates and leakage, and the per-file cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simpsons_core import paths
from simpsons_core.cli import main
from simpsons_core.data.demo import draw_scene
from simpsons_core.data.near_duplicates import fingerprint, mirror_hashes
from simpsons_core.data.scan import (
    DuplicatePair,
    Leakage,
    ScanPace,
    scan_dataset,
)
from simpsons_core.data.scan_cache import inspect_files
from tests.conftest import shared_dataset


def _scene(seed: int, size: int = 64) -> Image.Image:
    return draw_scene("homer_simpson", np.random.default_rng(seed), size)


def _save(image: Image.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


@pytest.fixture
def leaky_dataset(tmp_path: Path) -> Path:
    """train/{a,b}: 4 distinct pictures each; test/a: a resized re-encoded twin, a mirrored twin and a new
    picture; test/b: a new picture."""
    root = tmp_path / "leaky"
    for k in range(8):
        _save(_scene(100 + k), root / "train" / "ab"[k % 2] / f"{k}.jpg", quality=92)
    original = Image.open(root / "train" / "a" / "0.jpg")
    _save(
        original.resize((48, 48), Image.Resampling.LANCZOS), root / "test" / "a" / "resized.jpg", quality=70
    )
    mirrored = Image.open(root / "train" / "b" / "1.jpg").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    _save(mirrored, root / "test" / "a" / "mirrored.png")
    _save(_scene(999), root / "test" / "a" / "new.jpg")
    _save(_scene(998), root / "test" / "b" / "new.jpg")
    return root


def test_counts_sizes_and_imbalance(workspace: Path, tiny_dataset: Path) -> None:
    report = scan_dataset(tiny_dataset)
    assert report.kind == "tutorial"
    train, test = report.splits
    assert train.counts == dict.fromkeys(report.classes, 24) and test.total == 24
    assert train.sizes is not None and train.sizes.width == (96, 96, 96)
    assert train.imbalance == 1.0
    assert train.formats == {"JPEG RGB": 96}
    assert report.problems == []
    assert report.leakage is not None and report.leakage.near_duplicates == 0


def test_every_problem_kind_is_listed_with_its_file(workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "messy"
    for k in range(3):
        _save(_scene(k), root / "train" / "a" / f"{k}.jpg")
        _save(_scene(10 + k), root / "train" / "b" / f"{k}.jpg")
    _save(_scene(20), root / "train" / "only_train" / "0.jpg")
    _save(_scene(30), root / "test" / "a" / "0.jpg")
    _save(_scene(31), root / "test" / "b" / "0.jpg")
    (root / "train" / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no jpeg")
    truncated = (root / "train" / "b" / "0.jpg").read_bytes()[:300]
    (root / "train" / "b" / "truncated.jpg").write_bytes(truncated)
    (root / "train" / "b" / "empty.png").write_bytes(b"")
    (root / "train" / "a" / "readme.txt").write_text("not a picture")
    (root / "train" / "empty_class").mkdir()
    _save(Image.new("RGB", (10, 10), "red"), root / "train" / "a" / "tiny.png")

    report = scan_dataset(root)
    found = {(p.kind, report.shown(p.path)) for p in report.problems}
    assert {
        ("unreadable", "train/a/corrupt.jpg"),
        ("unreadable", "train/b/truncated.jpg"),
        ("unreadable", "train/b/empty.png"),
        ("non-image", "train/a/readme.txt"),
        ("empty-class", "train/empty_class"),
        ("tiny", "train/a/tiny.png"),
        ("missing-class", ""),
        ("few-images", "train/only_train"),
    } == found
    messages = {report.shown(p.path): p.message for p in report.problems}
    assert "empty (0 bytes)" in messages["train/b/empty.png"]
    assert "10x10" in messages["train/a/tiny.png"]
    assert report.splits[0].counts == {"a": 4, "b": 3, "only_train": 1}  # readable images only
    text = report.to_text()
    assert "Problems (8" in text and "train/a/corrupt.jpg" in text


def test_leakage_finds_resized_and_mirrored_twins(workspace: Path, leaky_dataset: Path) -> None:
    report = scan_dataset(leaky_dataset)
    leakage = report.leakage
    assert leakage is not None
    assert (leakage.near_duplicates, leakage.test_images) == (2, 4)
    assert leakage.summary == "2 of 4 test images are near-duplicates of training images"
    pairs = {(p.first, p.second): p for p in leakage.pairs}
    assert set(pairs) == {("test/a/resized.jpg", "train/a/0.jpg"), ("test/a/mirrored.png", "train/b/1.jpg")}
    mirrored = pairs["test/a/mirrored.png", "train/b/1.jpg"]
    assert mirrored.mirrored and (mirrored.first_label, mirrored.second_label) == ("a", "b")
    assert not pairs["test/a/resized.jpg", "train/a/0.jpg"].mirrored
    assert "test/a/mirrored.png  ~  train/b/1.jpg" in report.to_text()
    assert report.duplicates[0].pairs == []  # the training pictures are all different


def _pair(label: str, test: int, twin: int, distance: int = 0) -> DuplicatePair:
    return DuplicatePair(
        f"test/{label}/{test}.jpg", f"train/{label}/{twin}.jpg", distance, False, False, label, label
    )


def test_the_leakage_sample_takes_each_class_in_turn_and_each_test_image_once() -> None:
    """Sorted by path, the first pairs would all be bart's; the sample shows every class, each test image
    beside its closest twin."""
    pairs = [_pair("bart", k, k) for k in range(5)] + [_pair("homer", 0, 0)]
    pairs += [_pair("lisa", 0, 1, distance=3), _pair("lisa", 0, 2, distance=1), _pair("lisa", 1, 3)]
    leakage = Leakage(
        test_images=20, near_duplicates=8, identical_hash=0, identical_files=0, hash_only=0, pairs=pairs
    )
    assert leakage.sample_pairs(5) == [
        _pair("bart", 0, 0),
        _pair("homer", 0, 0),
        _pair("lisa", 0, 2, distance=1),
        _pair("bart", 1, 1),
        _pair("lisa", 1, 3),
    ]
    assert len(leakage.sample_pairs(100)) == 8 and leakage.sample_pairs(0) == []


def test_scan_pace_gives_the_time_left_at_the_rate_so_far() -> None:
    start = ScanPace(done=0, total=400, elapsed=0.5)
    assert (start.fraction, start.rate, start.seconds_left) == (0.0, None, None)
    quarter = ScanPace(done=100, total=400, elapsed=5.0)
    assert (quarter.fraction, quarter.rate, quarter.seconds_left) == (0.25, 20.0, 15.0)
    assert ScanPace(done=400, total=400, elapsed=20.0).seconds_left == 0.0
    assert ScanPace(done=0, total=0, elapsed=0.0).fraction == 1.0


def test_identical_files_within_a_split_and_under_two_labels(workspace: Path, leaky_dataset: Path) -> None:
    source = leaky_dataset / "train" / "a" / "0.jpg"
    (leaky_dataset / "train" / "a" / "copy.jpg").write_bytes(source.read_bytes())
    (leaky_dataset / "train" / "b" / "relabelled.jpg").write_bytes(source.read_bytes())
    report = scan_dataset(leaky_dataset)
    train = report.duplicates[0]
    assert (train.identical_groups, train.identical_files, train.clusters, train.largest_cluster) == (
        1,
        3,
        1,
        3,
    )
    assert all(pair.identical for pair in train.pairs)
    conflicts = [p for p in report.problems if p.kind == "label-conflict"]
    assert [(report.shown(p.path), p.message) for p in conflicts] == [
        (
            "train/b/relabelled.jpg",
            "the same file under two labels in the train split: b here, a as train/a/0.jpg",
        )
    ]


def test_second_scan_decodes_nothing_and_a_changed_file_is_decoded_again(
    workspace: Path, leaky_dataset: Path
) -> None:
    first = scan_dataset(leaky_dataset)
    assert first.decoded == first.files == 12
    second = scan_dataset(leaky_dataset)
    assert second.decoded == 0
    assert second.to_dict() | {"seconds": 0, "decoded": 0} == first.to_dict() | {"seconds": 0, "decoded": 0}
    changed = leaky_dataset / "test" / "a" / "new.jpg"
    _save(_scene(12345), changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    assert scan_dataset(leaky_dataset).decoded == 1


def test_a_damaged_cache_is_ignored_and_rebuilt(workspace: Path, leaky_dataset: Path) -> None:
    scan_dataset(leaky_dataset)
    (cache,) = (paths.cache_dir() / "scan").glob("*.npz")
    cache.write_bytes(b"garbage")
    assert scan_dataset(leaky_dataset).decoded == 12
    assert scan_dataset(leaky_dataset).decoded == 0


def test_worker_processes_give_the_same_facts(workspace: Path, leaky_dataset: Path) -> None:
    files = sorted(leaky_dataset.rglob("*.*"))
    alone = inspect_files(leaky_dataset, files, workers=1).infos
    (paths.cache_dir() / "scan").rename(paths.cache_dir() / "old")
    pooled = inspect_files(leaky_dataset, files, workers=2)
    assert pooled.decoded == len(files) and pooled.infos == alone


def test_mirrored_hash_equals_the_hash_of_the_mirrored_image() -> None:
    for seed in range(5):
        image = _scene(seed, size=37 + seed)
        flipped = fingerprint(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))[0]
        assert mirror_hashes(np.array([fingerprint(image)[0]], dtype=np.uint64))[0] == flipped


def test_cli_json_and_text(workspace: Path, leaky_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["scan", str(leaky_dataset), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "train-test"
    assert data["leakage"]["summary"] == "2 of 4 test images are near-duplicates of training images"
    assert main.main(["scan", str(leaky_dataset)]) == 0
    out = capsys.readouterr().out
    assert "Leakage: 2 of 4 test images" in out and "0 decoded, 12 from the cache" in out


def test_cli_names_a_missing_folder(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["scan", str(workspace / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.skipif(shared_dataset("simpsons4-mini") is None, reason="simpsons4-mini is not on this machine")
def test_finds_the_tutorial_test_split_leak_in_simpsons4_mini(workspace: Path) -> None:
    """SOURCE.md: 68 test images within 4 bits of a training image's hash (49 identical); 5 of the 68 are
    different pictures that the colour check rejects."""
    leakage = scan_dataset(shared_dataset("simpsons4-mini")).leakage
    assert leakage is not None and leakage.test_images == 200
    assert leakage.identical_hash == 49
    assert 60 <= leakage.near_duplicates <= 68
