"""The Augmentation page: controls start at the tutorial's values, moving one changes the preview that
`augment.preview` draws, and "use these settings" stores the config the Train page starts with."""

from __future__ import annotations

from pathlib import Path

from page_helpers import assert_clean, open_page, with_name

from simpsons_core import settings
from simpsons_core.config import AugmentConfig

pytest_plugins = ["page_fixtures", "run_fixtures"]


def augmented_urls(at) -> list[str]:
    """The preview's augmented copies (the originals carry a caption)."""
    return [image.value[0] for image in at.image if not image.captions[0]]


def original_urls(at) -> list[str]:
    return [image.value[0] for image in at.image if image.captions[0] == "original"]


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_controls_start_at_the_tutorials_values_and_the_preview_shows_every_class(on_dataset: Path) -> None:
    at = open_page("augmentation")
    assert at.session_state.augment_config == AugmentConfig()
    assert at.slider(key="augment_zoom").value == 0.2 and at.slider(key="augment_shear_degrees").value == 0.2
    assert at.toggle(key="augment_horizontal_flip").value is True
    assert len(original_urls(at)) == 4 and len(augmented_urls(at)) == 4 * 5


def test_moving_a_slider_changes_the_config_and_the_augmented_images_only(on_dataset: Path) -> None:
    at = open_page("augmentation")
    originals, before = original_urls(at), augmented_urls(at)
    at.slider(key="augment_rotation_degrees").set_value(90.0).run()
    assert_clean(at)
    assert at.session_state.augment_config == AugmentConfig(rotation_degrees=90.0)
    after = augmented_urls(at)
    assert original_urls(at) == originals
    assert len(after) == len(before) and not set(after) & set(before)


def test_all_effects_off_shows_the_originals_unchanged(on_dataset: Path) -> None:
    at = open_page("augmentation")
    for name in ("zoom", "width_shift", "height_shift", "shear_degrees"):
        at.slider(key=f"augment_{name}").set_value(0.0)
    at.toggle(key="augment_horizontal_flip").set_value(False).run()
    assert at.session_state.augment_config == AugmentConfig(
        shear_degrees=0.0, zoom=0.0, width_shift=0.0, height_shift=0.0, horizontal_flip=False
    )
    # Identical pixels give identical (content-hashed) media URLs.
    originals = original_urls(at)
    copies = augmented_urls(at)
    assert all(copies[5 * row : 5 * row + 5] == [originals[row]] * 5 for row in range(len(originals)))


def test_use_for_training_stores_the_config_and_the_next_visit_starts_from_it(on_dataset: Path) -> None:
    at = open_page("augmentation")
    at.slider(key="augment_brightness").set_value(0.3).run()
    button(at, "Use these settings for training").click().run()
    assert with_name(at.success, "the Train page starts with these settings")
    assert settings.training_augment() == AugmentConfig(brightness=0.3)

    again = open_page("augmentation")
    assert again.slider(key="augment_brightness").value == 0.3
    button(again, "Tutorial values").click().run()
    assert again.session_state.augment_config == AugmentConfig()


def test_new_random_draw_changes_the_copies(on_dataset: Path) -> None:
    at = open_page("augmentation")
    before = augmented_urls(at)
    button(at, "New random draw").click().run()
    assert not set(augmented_urls(at)) & set(before)


def test_without_a_usable_dataset_the_controls_still_work(empty_dataset: Path) -> None:
    at = open_page("augmentation")
    assert with_name(at.error, "The active dataset cannot be used")
    at.slider(key="augment_zoom").set_value(0.5).run()
    assert_clean(at)
    assert at.session_state.augment_config.zoom == 0.5
