"""The demo dataset: tutorial layout, deterministic bytes for a seed, generated once into the workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simpsons_core.cli import main
from simpsons_core.data.demo import CLASSES, draw_scene, ensure_demo_dataset, generate_demo_dataset


def _files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*.jpg"))}


def test_tutorial_layout_with_the_requested_counts(tmp_path: Path) -> None:
    out = generate_demo_dataset(tmp_path / "demo", train_per_class=3, test_per_class=2, seed=1, size=40)
    for name in CLASSES:
        train = sorted(p.name for p in (out / "simpsons_trainset" / name).iterdir())
        test = sorted(p.name for p in (out / "simpson_testset" / name).iterdir())
        assert train == ["pic_0000.jpg", "pic_0001.jpg", "pic_0002.jpg"]
        assert test == [f"{name}_0.jpg", f"{name}_1.jpg"]
    with Image.open(out / "simpsons_trainset" / "lisa_simpson" / "pic_0000.jpg") as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (40, 40))


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    first = _files(
        generate_demo_dataset(tmp_path / "a", train_per_class=2, test_per_class=1, seed=5, size=32)
    )
    again = _files(
        generate_demo_dataset(tmp_path / "b", train_per_class=2, test_per_class=1, seed=5, size=32)
    )
    other = _files(
        generate_demo_dataset(tmp_path / "c", train_per_class=2, test_per_class=1, seed=6, size=32)
    )
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_a_larger_dataset_keeps_the_smaller_ones_images(tmp_path: Path) -> None:
    small = _files(generate_demo_dataset(tmp_path / "small", train_per_class=1, test_per_class=1, size=32))
    large = _files(generate_demo_dataset(tmp_path / "large", train_per_class=3, test_per_class=2, size=32))
    assert all(large[name] == data for name, data in small.items())


def test_images_vary_within_a_class_and_marge_is_bluest() -> None:
    """Random backgrounds and poses, while the beehive makes Marge's pictures bluer on average."""
    scenes = {
        name: [np.asarray(draw_scene(name, np.random.default_rng(k), 48), float) for k in range(12)]
        for name in CLASSES
    }
    bart = scenes["bart_simpson"]
    assert np.abs(bart[0] - bart[1]).mean() > 20

    def blueness(images: list[np.ndarray]) -> float:
        return float(np.mean([(image[..., 2] - image[..., :2].mean(-1)).mean() for image in images]))

    assert blueness(scenes["marge_simpson"]) == max(blueness(images) for images in scenes.values())


def test_refuses_a_folder_that_already_has_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate_demo_dataset(tmp_path)


def test_ensure_generates_once_into_the_workspace(workspace: Path) -> None:
    demo = ensure_demo_dataset()
    assert demo == workspace / "datasets" / "demo"
    assert len(list(demo.rglob("*.jpg"))) == 4 * (80 + 20)
    marker = demo / "simpsons_trainset" / "bart_simpson" / "pic_0000.jpg"
    stamp = marker.stat().st_mtime_ns
    assert ensure_demo_dataset() == demo
    assert marker.stat().st_mtime_ns == stamp
    assert [p.name for p in (workspace / "datasets").iterdir()] == ["demo"]  # no staging folder left


def test_cli_draws_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "demo-data",
        str(tmp_path / "out"),
        "--train-per-class",
        "2",
        "--test-per-class",
        "1",
        "--size",
        "32",
    ]
    assert main.main(args) == 0
    assert "Drew 12 images" in capsys.readouterr().out
    assert len(list((tmp_path / "out").rglob("*.jpg"))) == 12
