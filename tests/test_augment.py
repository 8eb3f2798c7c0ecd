"""Augmentation: each effect does what its slider says, all off is the identity, seeds repeat exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from simpsons_core.config import AugmentConfig  # noqa: E402
from simpsons_core.data.augment import augment_batch, augmentation_seed, preview, to_display  # noqa: E402

SIZE = 32
OFF = AugmentConfig(
    shear_degrees=0, zoom=0, width_shift=0, height_shift=0, horizontal_flip=False, rescale=1.0
)


def only(**effects: object) -> AugmentConfig:
    """Every effect off except the given ones; rescale 1 so outputs are pixels."""
    return dataclasses.replace(OFF, **effects)


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    """8 colourful, asymmetric 32x32 pictures: noise on a gradient, each with a bright square somewhere."""
    rng = np.random.default_rng(3)
    ramp = np.linspace(40, 200, SIZE)
    images = np.stack([np.broadcast_to(ramp[None, :, None], (SIZE, SIZE, 3))] * 8).copy()
    images += rng.normal(0, 12, images.shape)
    for index, image in enumerate(images):
        row, column = 4 + index, 6 + 2 * index
        image[row : row + 6, column : column + 6] = [250, 30 * (index % 4), 60]
    return np.clip(images, 20, 255).astype(np.uint8)


def augmented(images: np.ndarray, config: AugmentConfig, step: int = 0, seed: int = 7) -> np.ndarray:
    return augment_batch(images, config, augmentation_seed(seed, step)).numpy()


def square_centre(image: np.ndarray) -> np.ndarray:
    """(row, column) centre of one image's bright square, found by its colour."""
    rows, columns = np.nonzero((image[..., 0] > 200) & (image[..., 2] < 120))
    return np.array([rows.mean(), columns.mean()])


def test_everything_off_is_exactly_the_rescale(pictures):
    config = dataclasses.replace(OFF, rescale=1 / 255)
    result = augmented(pictures, config)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, pictures.astype(np.float32) * np.float32(1 / 255))


def test_tutorial_defaults_give_float_images_in_0_1_of_the_same_shape(pictures):
    result = augmented(pictures, AugmentConfig())
    assert result.shape == pictures.shape and result.dtype == np.float32
    assert result.min() >= 0.0 and result.max() <= 1.0
    assert not np.allclose(result, pictures / 255.0, atol=0.01)


def test_same_seed_and_step_repeat_exactly_and_other_steps_or_seeds_differ(pictures):
    config = AugmentConfig(rotation_degrees=20, brightness=0.2, hue=0.1)
    first = augmented(pictures, config, step=3)
    np.testing.assert_array_equal(first, augmented(pictures, config, step=3))
    assert not np.allclose(first, augmented(pictures, config, step=4))
    assert not np.allclose(first, augmented(pictures, config, step=3, seed=8))


@pytest.mark.parametrize(
    "effect",
    [
        {"shear_degrees": 30.0},
        {"zoom": 0.5},
        {"width_shift": 0.3},
        {"height_shift": 0.3},
        {"rotation_degrees": 45.0},
        {"crop_area": 0.8},
        {"brightness": 0.4},
        {"contrast": 0.6},
        {"saturation": 0.8},
        {"hue": 0.3},
    ],
    ids=lambda effect: next(iter(effect)),
)
def test_each_effect_changes_every_image_when_on(pictures, effect):
    result = augmented(pictures, only(**effect))
    changed = np.abs(result - pictures).mean(axis=(1, 2, 3))
    assert (changed > 1.0).all(), changed


def test_horizontal_flip_mirrors_about_half_the_images_exactly(pictures):
    outcomes = []
    for step in range(4):
        result = augmented(pictures, only(horizontal_flip=True), step=step)
        for image, original in zip(result, pictures, strict=True):
            mirrored = np.array_equal(image, original[:, ::-1])
            assert mirrored or np.array_equal(image, original)
            outcomes.append(mirrored)
    assert 0.25 < np.mean(outcomes) < 0.75


def test_width_shift_moves_content_sideways_and_height_shift_up_or_down(pictures):
    before = np.array([square_centre(image) for image in pictures])
    sideways = np.array([square_centre(image) for image in augmented(pictures, only(width_shift=0.2))])
    vertical = np.array([square_centre(image) for image in augmented(pictures, only(height_shift=0.2))])
    assert np.abs(sideways[:, 0] - before[:, 0]).max() < 0.5 < np.abs(sideways[:, 1] - before[:, 1]).max()
    assert np.abs(vertical[:, 1] - before[:, 1]).max() < 0.5 < np.abs(vertical[:, 0] - before[:, 0]).max()
    assert np.abs(sideways[:, 1] - before[:, 1]).max() <= 0.2 * SIZE + 0.5


def test_zoom_scales_width_and_height_independently():
    square = np.zeros((8, SIZE, SIZE, 3), np.uint8)
    square[:, 8:24, 8:24] = 255
    result = augmented(square, only(zoom=0.4, fill_mode="constant"))
    widths = (result[:, SIZE // 2, :, 0] > 127).sum(axis=1)
    heights = (result[:, :, SIZE // 2, 0] > 127).sum(axis=1)
    assert not np.array_equal(widths, heights)
    assert len(set(widths.tolist())) > 1


def test_the_tutorials_shear_of_0_2_degrees_barely_changes_an_image(pictures):
    """The legacy shear_range is in degrees: the tutorial's 0.2 moves no pixel by a tenth of a pixel."""
    nearly_nothing = np.abs(augmented(pictures, only(shear_degrees=0.2)) - pictures).mean()
    visible = np.abs(augmented(pictures, only(shear_degrees=20.0)) - pictures).mean()
    assert nearly_nothing < 0.5 < 5.0 < visible


def test_random_resized_crop_stays_inside_the_image(pictures):
    """A crop only ever zooms in, so even the constant (black) fill never shows."""
    result = augmented(pictures, only(crop_area=0.9, fill_mode="constant"))
    assert result.min() >= 19.0


@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_fill_modes_fill_uncovered_pixels_as_named(fill_mode):
    """A left-to-right ramp shifted sideways shows each mode's fill at the uncovered edge."""
    ramp = np.broadcast_to((50 + 5 * np.arange(SIZE))[None, None, :, None], (8, SIZE, SIZE, 3)).astype(
        np.uint8
    )
    rows = augmented(ramp, only(width_shift=0.5, fill_mode=fill_mode))[:, SIZE // 2, :, 0]
    steps = np.diff(rows, axis=1)
    if fill_mode == "nearest":
        assert rows.min() >= 50 and (steps >= -1e-3).all() and (steps == 0).any()
    elif fill_mode == "constant":
        assert rows.min() == 0
    elif fill_mode == "reflect":
        assert rows.min() >= 50 and np.abs(steps).max() <= 5 + 1e-3
        assert ((steps > 1).any(axis=1) & (steps < -1).any(axis=1)).any()
    else:
        assert rows.min() >= 50 and steps.min() < -100


def test_saturation_and_hue_leave_grey_alone_but_brightness_does_not():
    grey = np.full((4, SIZE, SIZE, 3), 120, np.uint8)
    np.testing.assert_allclose(augmented(grey, only(saturation=0.9, hue=0.5)), grey, atol=1e-3)
    brighter = augmented(grey, only(brightness=0.5))
    assert np.abs(brighter - 120).max() > 10 and brighter.max() <= 255


def test_greyscale_turns_about_its_share_of_images_grey_and_leaves_the_others_alone(pictures):
    colourful = np.repeat(pictures, 8, axis=0)  # 8 x 8 = 64 draws
    result = augmented(colourful, only(greyscale=0.5))
    grey = np.abs(result[..., 0] - result[..., 1]).max(axis=(1, 2)) < 1.0
    assert 16 <= grey.sum() <= 48
    np.testing.assert_allclose(result[~grey], colourful[~grey], atol=1e-3)
    luma = colourful[grey].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(result[grey][..., 0], luma, atol=0.6)


def test_a_later_effect_leaves_the_draws_of_the_others_unchanged(pictures):
    """Runs made before greyscale existed repeat exactly: it draws from its own stream, so the warps and
    flips of the same seed are the same with it on."""
    geometry = only(rotation_degrees=30.0, crop_area=0.5, horizontal_flip=True)
    warped = augmented(pictures, geometry)
    with_grey = augmented(pictures, dataclasses.replace(geometry, greyscale=1.0))
    luma = warped @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(with_grey[..., 1], luma, atol=0.6)


def test_contrast_keeps_each_images_mean_and_changes_its_spread(pictures):
    result = augmented(pictures, only(contrast=0.5))
    np.testing.assert_allclose(result.mean(axis=(1, 2, 3)), pictures.mean(axis=(1, 2, 3)), atol=3.0)
    assert not np.allclose(result.std(axis=(1, 2, 3)), pictures.std(axis=(1, 2, 3)), rtol=0.02)


def test_preview_copy_k_is_training_step_k_undone_to_uint8(pictures):
    config = AugmentConfig(rotation_degrees=15, contrast=0.3)
    shown = preview(config, pictures[:3], n=4, seed=11)
    assert shown.shape == (3, 4, SIZE, SIZE, 3) and shown.dtype == np.uint8
    for step in range(4):
        trained = augment_batch(pictures[:3], config, augmentation_seed(11, step))
        np.testing.assert_array_equal(shown[:, step], to_display(trained, config))
    np.testing.assert_array_equal(preview(config, pictures[:3], n=4, seed=11), shown)


def test_preview_with_everything_off_shows_the_originals(pictures):
    shown = preview(dataclasses.replace(OFF, rescale=1 / 255), pictures, n=2, seed=0)
    np.testing.assert_array_equal(shown, np.stack([pictures, pictures], axis=1))
