"""The input pipeline: decode once (in memory or a file cache), skip bad files, shuffle, repeat, augment."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from simpsons_core.config import AugmentConfig, TrainConfig  # noqa: E402
from simpsons_core.data.augment import augment_batch, augmentation_seed, preview, to_display  # noqa: E402
from simpsons_core.data.decoding import decode_images  # noqa: E402
from simpsons_core.data.images import load_pixels  # noqa: E402
from simpsons_core.data.pipeline import (  # noqa: E402
    evaluation_dataset,
    prepare_for_model,
    training_dataset,
)

CLASSES = ["bart", "homer", "lisa", "marge"]
SIZE = 32
NO_AUGMENT = AugmentConfig(shear_degrees=0, zoom=0, width_shift=0, height_shift=0, horizontal_flip=False)


@dataclasses.dataclass(frozen=True)
class Item:
    """What the pipeline needs of an image (as `layout.LabelledImage` provides)."""

    path: Path
    label: str


def write_images(folder: Path, count: int, seed: int = 0) -> list[Item]:
    """`count` distinct 40x40 JPEGs, classes in turn: random colours with a class-specific bar."""
    rng = np.random.default_rng(seed)
    items = []
    for index in range(count):
        label = CLASSES[index % len(CLASSES)]
        pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        pixels[:, 10 * (index % 4) : 10 * (index % 4) + 6] = 255
        path = folder / label / f"{label}_{index}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)
        items.append(Item(path, label))
    return items


@pytest.fixture
def items(tmp_path: Path) -> list[Item]:
    return write_images(tmp_path / "data", 16)


@pytest.fixture
def decoded(items):
    return decode_images(items, CLASSES, SIZE)


def config(**changes: object) -> TrainConfig:
    return TrainConfig(image_size=SIZE, batch_size=5, seed=3).replace(**changes)


def batches(dataset: tf.data.Dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]


def rows_of(images: np.ndarray, decoded) -> list[int]:
    """Which decoded row each unaugmented, rescaled image is."""
    scaled = decoded.pixels.astype(np.float32) * np.float32(NO_AUGMENT.rescale)
    return [int(np.flatnonzero((scaled == image).all(axis=(1, 2, 3)))[0]) for image in images]


def test_decode_gives_load_pixels_of_every_file_with_its_label(items, decoded):
    assert decoded.pixels.shape == (16, SIZE, SIZE, 3) and decoded.pixels.dtype == np.uint8
    assert decoded.labels.dtype == np.int32 and len(decoded) == 16
    assert decoded.paths == [item.path for item in items] and decoded.skipped == []
    assert [CLASSES[label] for label in decoded.labels] == [item.label for item in items]
    for row, item in enumerate(items):
        np.testing.assert_array_equal(decoded.pixels[row], load_pixels(item.path, SIZE))


def test_decode_reports_progress_up_to_the_total(items):
    seen = []
    decode_images(items, CLASSES, SIZE, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (16, 16) and [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_bad_files_and_unknown_classes_are_skipped_with_a_warning_naming_them(items, tmp_path):
    corrupt = tmp_path / "data" / "lisa" / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "data" / "bart" / "gone.jpg"
    stranger = items[0].path.with_name("nelson_1.jpg")
    stranger.write_bytes(items[0].path.read_bytes())
    extra = [Item(corrupt, "lisa"), Item(missing, "bart"), Item(stranger, "nelson")]
    with pytest.warns(UserWarning, match="broken.jpg") as caught:
        result = decode_images([*items[:4], *extra, *items[4:]], CLASSES, SIZE)
    message = str(caught[0].message)
    assert "Skipped 3 of 19 images" in message and "gone.jpg" in message and "nelson_1.jpg" in message
    assert {path.name for path, _ in result.skipped} == {"broken.jpg", "gone.jpg", "nelson_1.jpg"}
    assert len(result) == 16 and result.paths == [item.path for item in items]
    np.testing.assert_array_equal(result.pixels[4], load_pixels(items[4].path, SIZE))


def test_file_cache_is_reused_until_a_file_changes(items, decoded, workspace):
    first = decode_images(items, CLASSES, SIZE, cache="file")
    assert (
        isinstance(first.pixels, np.memmap)
        and Path(first.pixels.filename).parent.parent == workspace / "cache"
    )
    np.testing.assert_array_equal(first.pixels, decoded.pixels)
    cache_file = Path(first.pixels.filename)
    marked = np.memmap(cache_file, dtype=np.uint8, mode="r+")
    marked[:] = 7  # a second decode that returns 7s read the cache instead of the files
    marked.flush()
    del marked
    second = decode_images(items, CLASSES, SIZE, cache="file")
    assert (np.asarray(second.pixels) == 7).all() and second.labels.tolist() == decoded.labels.tolist()
    os.utime(items[0].path, ns=(0, 0))
    third = decode_images(items, CLASSES, SIZE, cache="file")
    np.testing.assert_array_equal(third.pixels, decoded.pixels)
    assert not [path for path in cache_file.parent.iterdir() if path.name.endswith(".tmp")]


def test_file_cache_remembers_skipped_files(items, workspace):
    corrupt = items[0].path.with_name("broken.jpg")
    corrupt.write_bytes(b"garbage")
    with_corrupt = [Item(corrupt, "bart"), *items]
    with pytest.warns(UserWarning, match="broken.jpg"):
        first = decode_images(with_corrupt, CLASSES, SIZE, cache="file")
    with pytest.warns(UserWarning, match="broken.jpg"):
        second = decode_images(with_corrupt, CLASSES, SIZE, cache="file")
    assert second.skipped == first.skipped and len(second) == 16
    np.testing.assert_array_equal(second.pixels, first.pixels)


def test_unknown_cache_mode_is_refused(items):
    with pytest.raises(ValueError, match="cache must be one of memory, file"):
        decode_images(items, CLASSES, SIZE, cache="disk")


def test_training_batches_have_the_models_shapes_types_and_range(decoded):
    dataset, steps = training_dataset(decoded, config())
    assert steps == 4
    images_spec, labels_spec = dataset.element_spec
    assert images_spec.dtype == tf.float32 and images_spec.shape.as_list() == [5, SIZE, SIZE, 3]
    assert labels_spec.dtype == tf.int32 and labels_spec.shape.as_list() == [5]
    for images, labels in batches(dataset, steps):
        assert images.dtype == np.float32 and images.min() >= 0.0 and images.max() <= 1.0
        assert set(labels.tolist()) <= {0, 1, 2, 3}


def test_images_stream_as_one_new_shuffled_order_after_another_in_full_batches(decoded):
    dataset, steps = training_dataset(decoded, config(augment=NO_AUGMENT))
    seen = batches(dataset, 3 * steps)  # 3 epochs of 4 batches of 5: 60 images, 3.75 orders of 16
    assert steps == 4 and [len(labels) for _, labels in seen] == [5] * 12
    rows = [row for images, _ in seen for row in rows_of(images, decoded)]
    labels = np.concatenate([labels for _, labels in seen])
    assert labels.tolist() == decoded.labels[rows].tolist()
    orders = [rows[start : start + 16] for start in range(0, 48, 16)]
    assert all(sorted(order) == list(range(16)) for order in orders)
    assert orders[0] != orders[1] != orders[2]


def test_same_seed_repeats_exactly_and_another_seed_does_not(decoded):
    first = batches(training_dataset(decoded, config())[0], 6)
    again = batches(training_dataset(decoded, config())[0], 6)
    other = batches(training_dataset(decoded, config(seed=4))[0], 6)
    for (images, labels), (same_images, same_labels) in zip(first, again, strict=True):
        np.testing.assert_array_equal(images, same_images)
        np.testing.assert_array_equal(labels, same_labels)
    assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, other, strict=True))


def test_a_batch_is_never_bigger_than_the_dataset_and_each_epoch_augments_anew(items):
    single = decode_images(items[:1], CLASSES, SIZE)
    dataset, steps = training_dataset(single, config(batch_size=32))
    epochs = [images[0] for images, _ in batches(dataset, 3)]
    assert steps == 1 and dataset.element_spec[0].shape[0] == 1
    assert not np.allclose(epochs[0], epochs[1]) and not np.allclose(epochs[1], epochs[2])


def test_training_augmentation_equals_the_preview_for_the_same_seed(items):
    """Four images, one per class, one batch per step: the labels tell each step's order."""
    four = decode_images(items[:4], CLASSES, SIZE)
    settings = config(
        batch_size=4, augment=AugmentConfig(rotation_degrees=20, brightness=0.2, fill_mode="reflect")
    )
    for step, (images, labels) in enumerate(batches(training_dataset(four, settings)[0], 3)):
        shown = preview(settings.augment, four.pixels[labels], n=step + 1, seed=settings.seed)[:, step]
        np.testing.assert_array_equal(to_display(images, settings.augment), shown)


def test_file_cache_and_memory_give_the_same_training_batches(items, decoded, workspace):
    from_file = decode_images(items, CLASSES, SIZE, cache="file")
    for (a, a_labels), (b, b_labels) in zip(
        batches(training_dataset(decoded, config())[0], 5),
        batches(training_dataset(from_file, config())[0], 5),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a_labels, b_labels)


def test_no_training_images_is_a_clear_error(items):
    with pytest.warns(UserWarning):
        nothing = decode_images([Item(Path("/nonexistent/x.jpg"), "bart")], CLASSES, SIZE)
    with pytest.raises(ValueError, match="no training images"):
        training_dataset(nothing, config())


def test_evaluation_is_one_ordered_pass_scaled_like_training_without_augmentation(decoded):
    seen = batches(evaluation_dataset(decoded, config()), 100)
    assert [len(labels) for _, labels in seen] == [5, 5, 5, 1]
    images = np.concatenate([images for images, _ in seen])
    np.testing.assert_array_equal(images, prepare_for_model(decoded.pixels, AugmentConfig()).numpy())
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in seen]), decoded.labels)


def test_prepare_for_model_is_augment_batch_with_every_effect_off(decoded):
    prepared = prepare_for_model(decoded.pixels[:4], NO_AUGMENT)
    assert prepared.dtype == tf.float32
    same = augment_batch(decoded.pixels[:4], NO_AUGMENT, augmentation_seed(0, 0))
    np.testing.assert_array_equal(prepared.numpy(), same.numpy())
