"""Augmentation: one control per `AugmentConfig` field, and real images augmented live through
`augment.preview`, the very function training applies: what you see here is what the model will see."""

from __future__ import annotations

import dataclasses

import streamlit as st

from app_pages.shared import dataset_layout, reported
from simpsons_core import settings
from simpsons_core.config import DEFAULT_RECIPE, FILL_MODES, RECIPES, AugmentConfig
from simpsons_core.data.images import load_pixels

PREVIEW_SIZE = 192  # pixels each preview is drawn at; shown about 250 px wide, large enough to judge
PREVIEW_IMAGES = 4
COPIES = 5
PER_ROW = 3  # the original and its copies, three to a row
KEY = "augment_"
TRAIN_RECIPE_KEY = "train_recipe"  # where the Train page keeps its recipe choice in the session
# The recipe this visit started from: the Train page's widget state is dropped after the first run here.
STARTED_FROM = "augmentation_started_from"

# (field, label, maximum, step, help): the sliders, in the order a user thinks about them.
SLIDERS = (
    ("zoom", "Zoom (each axis)", 0.9, 0.05, "Each axis is scaled by a factor in [1 - zoom, 1 + zoom]."),
    ("width_shift", "Horizontal shift", 0.9, 0.05, "Largest move left or right, as a share of the width."),
    ("height_shift", "Vertical shift", 0.9, 0.05, "Largest move up or down, as a share of the height."),
    ("shear_degrees", "Shear (degrees)", 45.0, 0.1, "The tutorial's 0.2 is 0.2 degrees: almost nothing."),
    ("rotation_degrees", "Rotation (degrees)", 180.0, 1.0, "Largest rotation either way."),
    (
        "crop_area",
        "Random crop",
        0.9,
        0.05,
        "A crop keeps between (1 - this) and all of the area, resized back.",
    ),
    ("brightness", "Brightness", 0.9, 0.05, "Largest brightness change, as a share of full scale."),
    ("contrast", "Contrast", 0.9, 0.05, "0.2 scales contrast by 0.8 to 1.2."),
    ("saturation", "Saturation", 0.9, 0.05, "Largest saturation change, as a share."),
    ("hue", "Hue", 0.5, 0.01, "Largest hue rotation, as a share of the colour wheel."),
    ("greyscale", "Greyscale share", 1.0, 0.05, "The share of pictures made grey, like prints, sketches."),
)


def set_controls(config: AugmentConfig) -> None:
    for name, value in config.to_dict().items():
        st.session_state[KEY + name] = value


def selected_recipe() -> str:
    """The recipe chosen on the Train page in this session, else the default one."""
    name = st.session_state.get(TRAIN_RECIPE_KEY)
    return name if name in RECIPES else DEFAULT_RECIPE


def starting_config(recipe_name: str) -> AugmentConfig:
    """What a run of `recipe_name` started now would apply, as the Train page decides: the settings saved
    here, except for the tutorial recipe (which stays exact), else the recipe's own."""
    stored = settings.training_augment()
    if stored is not None and recipe_name != "tutorial":
        return stored
    return RECIPES[recipe_name].augment


def recipe_groups() -> dict[AugmentConfig, list[str]]:
    """The recipes by augmentation: several share one, and one button per distinct setting is enough."""
    groups: dict[AugmentConfig, list[str]] = {}
    for name, config in RECIPES.items():
        groups.setdefault(config.augment, []).append(name)
    return groups


def new_draw() -> None:
    st.session_state.preview_seed = st.session_state.get("preview_seed", 0) + 1


if KEY + "zoom" not in st.session_state:  # a new visit: the controls' state went when the last page ran
    st.session_state[STARTED_FROM] = selected_recipe()
    set_controls(starting_config(st.session_state[STARTED_FROM]))
recipe_name = st.session_state[STARTED_FROM]

st.title("Augmentation")
st.write(
    "Training changes every image a little, every epoch, so the model learns the character rather than the "
    f"pixels. The controls started where a run of the Train page's recipe (**{recipe_name}**) would; each "
    "control at 0 (or off) turns one change off. Change them, then press *Apply* to redraw the preview."
)

controls, preview_column = st.columns([1, 2], gap="large")
with controls:
    st.caption("Load a recipe's augmentation")
    with st.container(horizontal=True):
        for augment, names in recipe_groups().items():
            st.button(
                " / ".join(names),
                on_click=set_controls,
                args=(augment,),
                key="load_" + names[0],
                help=f"The augmentation a run of the {' or '.join(names)} recipe applies.",
            )
    # A form: dragging or arrow-keying a slider redraws nothing until Apply, rather than once per step.
    with st.form("augment_form"):
        for name, label, maximum, step, help_text in SLIDERS:
            st.slider(label, 0.0, maximum, step=step, key=KEY + name, help=help_text)
        st.selectbox("Fill uncovered pixels with", FILL_MODES, key=KEY + "fill_mode")
        st.toggle("Mirror half the images left to right", key=KEY + "horizontal_flip")
        st.number_input(
            "Rescale",
            min_value=1e-6,
            format="%.6f",
            key=KEY + "rescale",
            help="Multiplies pixel values (0-255) before the model sees them; 1/255 = 0.003922 gives 0 to 1. "
            "It does not change the pictures here.",
        )
        st.form_submit_button("Apply", type="primary", icon=":material/check:")

config = None
with reported("These settings cannot be used"):
    config = AugmentConfig(
        **{f.name: st.session_state[KEY + f.name] for f in dataclasses.fields(AugmentConfig)}
    )
st.session_state.augment_config = config

with preview_column:
    with st.container(horizontal=True):
        st.button("New random draw", on_click=new_draw, icon=":material/casino:", wrap=True)
        save = st.button(
            "Use these settings for training", type="primary", disabled=config is None, wrap=True
        )
    if save:
        settings.remember_training_augment(config)
        st.success("Saved: the Train page starts with these settings.")
    stored = settings.training_augment()
    st.caption(
        "The Train page starts with "
        + (
            "these settings."
            if stored == config
            else "the settings saved earlier."
            if stored
            else "its recipe's."
        )
    )

    layout = dataset_layout()
    if layout is not None and config is not None:
        samples = [items[0] for items in layout.samples(1).values() if items][:PREVIEW_IMAGES]
        with reported("The preview failed"), st.spinner("Augmenting..."):
            import numpy as np

            from simpsons_core.data.augment import preview

            pixels = np.stack([load_pixels(item.path, PREVIEW_SIZE) for item in samples])
            copies = preview(config, pixels, COPIES, seed=st.session_state.get("preview_seed", 0))
            for item, original, augmented in zip(samples, pixels, copies, strict=True):
                st.markdown(f"**{item.label}**: the original, then {COPIES} draws")
                images = [(original, "original"), *((image, None) for image in augmented)]
                for start in range(0, len(images), PER_ROW):
                    for column, (image, caption) in zip(
                        st.columns(PER_ROW), images[start : start + PER_ROW], strict=False
                    ):
                        column.image(image, caption=caption, width="stretch")
