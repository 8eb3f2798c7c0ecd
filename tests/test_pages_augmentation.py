"""The Augmentation page: controls start where a run of the Train page's recipe would, recipe buttons load
each recipe's augmentation, the controls sit in a form so only "Apply" redraws the preview that
`augment.preview` draws, and "use these settings" stores the config the Train page starts with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from page_helpers import assert_clean, open_page, with_name
from streamlit.testing.v1 import AppTest

from simpsons_core import settings
from simpsons_core.config import DEFAULT_RECIPE, RECIPES, AugmentConfig

pytest_plugins = ["page_fixtures", "run_fixtures"]

TUTORIAL = RECIPES["tutorial"].augment
DEFAULT = RECIPES[DEFAULT_RECIPE].augment


def augmented_urls(at: AppTest) -> list[str]:
    """The preview's augmented copies (the originals carry a caption)."""
    return [image.value[0] for image in at.image if not image.captions[0]]


def original_urls(at: AppTest) -> list[str]:
    return [image.value[0] for image in at.image if image.captions[0] == "original"]


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def apply(at: AppTest) -> AppTest:
    """Submit the controls' form."""
    return button(at, "Apply").click().run()


def test_controls_start_at_the_default_recipes_values_and_the_preview_shows_every_class(
    on_dataset: Path,
) -> None:
    assert DEFAULT != TUTORIAL  # else this test would not tell the two apart
    at = open_page("augmentation")
    assert at.session_state.augment_config == DEFAULT
    assert at.slider(key="augment_crop_area").value == DEFAULT.crop_area
    assert with_name(at.markdown, f"recipe (**{DEFAULT_RECIPE}**)")
    assert len(original_urls(at)) == 4 and len(augmented_urls(at)) == 4 * 5


def test_controls_start_at_the_recipe_picked_on_the_train_page(on_dataset: Path) -> None:
    at = open_page("train")
    next(group for group in at.button_group if group.key == "train_recipe").set_value("tutorial").run()
    at.switch_page("app_pages/augmentation.py").run()
    assert_clean(at)
    assert at.session_state.augment_config == TUTORIAL
    assert at.slider(key="augment_zoom").value == 0.2 and at.slider(key="augment_shear_degrees").value == 0.2
    apply(at)  # a rerun, after Streamlit dropped the Train page's widget state, still names the recipe
    assert with_name(at.markdown, "recipe (**tutorial**)")
    assert at.session_state.augment_config == TUTORIAL


def test_each_recipe_button_loads_that_recipes_augmentation(on_dataset: Path) -> None:
    at = open_page("augmentation")
    for name, config in RECIPES.items():
        button(at, next(b.label for b in at.button if name in b.label.split(" / "))).click().run()
        assert_clean(at)
        assert at.session_state.augment_config == config.augment, name


def test_a_slider_changes_nothing_until_apply_then_only_the_augmented_images(on_dataset: Path) -> None:
    at = open_page("augmentation")
    assert all(slider.form_id == "augment_form" for slider in at.slider)
    originals, before = original_urls(at), augmented_urls(at)
    at.slider(key="augment_rotation_degrees").set_value(90.0).run()  # as arrow keys would, step by step
    assert_clean(at)
    assert at.session_state.augment_config == DEFAULT
    assert augmented_urls(at) == before
    at.slider(key="augment_rotation_degrees").set_value(90.0)  # AppTest drops a value staged before a run
    apply(at)
    assert_clean(at)
    assert at.session_state.augment_config == dataclasses.replace(DEFAULT, rotation_degrees=90.0)
    after = augmented_urls(at)
    assert original_urls(at) == originals
    assert len(after) == len(before) and not set(after) & set(before)


def test_all_effects_off_shows_the_originals_unchanged(on_dataset: Path) -> None:
    at = open_page("augmentation")
    button(at, "tutorial").click().run()
    for name in ("zoom", "width_shift", "height_shift", "shear_degrees"):
        at.slider(key=f"augment_{name}").set_value(0.0)
    at.toggle(key="augment_horizontal_flip").set_value(False)
    apply(at)
    assert at.session_state.augment_config == AugmentConfig(
        shear_degrees=0.0, zoom=0.0, width_shift=0.0, height_shift=0.0, horizontal_flip=False
    )
    # Identical pixels give identical (content-hashed) media URLs.
    originals = original_urls(at)
    copies = augmented_urls(at)
    assert all(copies[5 * row : 5 * row + 5] == [originals[row]] * 5 for row in range(len(originals)))


def test_use_for_training_stores_the_config_and_the_next_visit_starts_from_it(on_dataset: Path) -> None:
    at = open_page("augmentation")
    at.slider(key="augment_brightness").set_value(0.3)
    apply(at)
    button(at, "Use these settings for training").click().run()
    assert with_name(at.success, "the Train page starts with these settings")
    assert settings.training_augment() == dataclasses.replace(DEFAULT, brightness=0.3)

    again = open_page("augmentation")
    assert again.slider(key="augment_brightness").value == 0.3
    button(again, "tutorial").click().run()
    assert again.session_state.augment_config == TUTORIAL


def test_new_random_draw_changes_the_copies(on_dataset: Path) -> None:
    at = open_page("augmentation")
    before = augmented_urls(at)
    button(at, "New random draw").click().run()
    assert not set(augmented_urls(at)) & set(before)


def test_without_a_usable_dataset_the_controls_still_work(empty_dataset: Path) -> None:
    at = open_page("augmentation")
    assert with_name(at.error, "The active dataset cannot be used")
    at.slider(key="augment_zoom").set_value(0.5)
    apply(at)
    assert_clean(at)
    assert at.session_state.augment_config.zoom == 0.5
