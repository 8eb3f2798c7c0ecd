"""The configuration dataclasses: one per concept, shared by the dashboard, the CLI, training and the tests.

What the augmentation preview shows is built from the same `AugmentConfig` that training applies, and a run's
`config.json` is exactly `TrainConfig.to_dict()`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, TypeVar

from simpsons_core.training.models import MODELS

T = TypeVar("T")


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ValueError naming the setting unless `value` is a finite number (a whole one with `integer`)
    within [low, high] (a bound excluded with `*_open`; None: unbounded). Finite first: NaN compares False
    with everything, so a plain range check lets it through, and training turns it into NaN predictions.

    Example: `check_number("learning_rate", nan, low=0, low_open=True)` raises "learning_rate must be a finite
    number above 0, not nan.".
    """
    kind = "a whole number" if integer else "a finite number"
    bounds = []
    if low is not None:
        bounds.append(f"{'above' if low_open else 'at least'} {low}")
    if high is not None:
        bounds.append(f"{'below' if high_open else 'at most'} {high}")
    numeric = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
    in_range = (
        numeric
        and math.isfinite(value)
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    )
    if not in_range:
        raise ValueError(f"{name} must be {' '.join([kind, ' and '.join(bounds)]).strip()}, not {value!r}.")


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes applied to every training image, every epoch. Each 0 or False turns one off.

    The defaults are the tutorial's `ImageDataGenerator` arguments in units a user understands. What the
    tutorial's numbers really did: `shear_range=0.2` is in *degrees* in the legacy API, so its shear was
    almost nothing; `zoom_range=0.2` scales x and y independently by 0.8-1.2; shifts move up to 20% of the
    width or height; pixels uncovered by a move are filled with the nearest edge pixel.

    Attributes:
        rescale: multiplies pixel values (0-255) before the model sees them; 1/255 gives 0-1.
        shear_degrees: maximum shear angle, in degrees, either way.
        zoom: maximum zoom change; each axis is scaled independently by a factor in [1 - zoom, 1 + zoom].
        width_shift: maximum horizontal shift, as a fraction of the width.
        height_shift: maximum vertical shift, as a fraction of the height.
        fill_mode: how uncovered pixels are filled: "nearest", "reflect", "wrap" or "constant" (black).
        horizontal_flip: mirror half of the images left to right.
        rotation_degrees: maximum rotation, in degrees, either way.
        crop_area: random resized crop; the crop keeps between (1 - crop_area) and all of the image's area,
            then is resized back. 0.6 lets the model see face-sized parts of a frame.
        brightness: maximum brightness change, as a fraction of full scale.
        contrast: maximum contrast change, as a fraction (0.2 gives 0.8-1.2x).
        saturation: maximum saturation change, as a fraction.
        hue: maximum hue rotation, as a fraction of the colour wheel (0-0.5).
        greyscale: the share of images turned grey, as drawings, sketches and prints are (0-1).
    """

    rescale: float = 1.0 / 255.0
    shear_degrees: float = 0.2
    zoom: float = 0.2
    width_shift: float = 0.2
    height_shift: float = 0.2
    fill_mode: str = "nearest"
    horizontal_flip: bool = True
    rotation_degrees: float = 0.0
    crop_area: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    greyscale: float = 0.0

    def __post_init__(self) -> None:
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {', '.join(FILL_MODES)}, not {self.fill_mode!r}.")
        if not isinstance(self.horizontal_flip, bool):
            raise ValueError(f"horizontal_flip must be true or false, not {self.horizontal_flip!r}.")
        for name in (
            "zoom",
            "width_shift",
            "height_shift",
            "crop_area",
            "brightness",
            "contrast",
            "saturation",
        ):
            check_number(name, getattr(self, name), low=0, high=1, high_open=True)
        check_number("hue", self.hue, low=0, high=0.5)
        check_number("greyscale", self.greyscale, low=0, high=1)
        check_number("shear_degrees", self.shear_degrees, low=0, high=90, high_open=True)
        check_number("rotation_degrees", self.rotation_degrees, low=0, high=180)
        check_number("rescale", self.rescale, low=0, low_open=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        return _from_dict(cls, data)


FILL_MODES = ("nearest", "reflect", "wrap", "constant")
VALIDATION_SOURCES = ("split", "test")
LR_SCHEDULES = ("constant", "cosine")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")  # see training/strategy.py
CLASS_WEIGHTS = ("none", "balanced")
# Above this ratio of the largest to the smallest training class, the scan suggests class_weights="balanced".
BALANCED_WEIGHTS_ABOVE = 1.5
PRECISIONS = ("auto", "float32", "bfloat16")
MAX_SEED = 2**32 - 1  # NumPy's seeds, which `keras.utils.set_random_seed` sets, stop here

# The studio recipe's augmentation imitates what users feed the model: face-sized crops of a frame, other
# lighting and colour balance, a slightly tilted camera. Measured on simpsons4-full: benchmarks/recipes.py.
STUDIO_AUGMENT = AugmentConfig(
    shear_degrees=0.0,
    zoom=0.1,
    width_shift=0.1,
    height_shift=0.1,
    crop_area=0.4,
    rotation_degrees=10.0,
    brightness=0.15,
    contrast=0.15,
    saturation=0.2,
    hue=0.03,
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. The same object drives the CLI, the dashboard and the tests.

    The field defaults are the studio recipe (a compact CNN from scratch); the default recipe a user gets is
    `DEFAULT_RECIPE` (see `RECIPES`; benchmarks/reports/intel-xeon-amx-bf16/recipes-trust.md has the figures).

    Attributes:
        data_dir: the dataset folder; "" means the embedded demo dataset.
        recipe: the recipe these values came from (for display; see `recipe()`).
        model: "tutorial" (the seed's network, unchanged) or "compact" (batch norm, global pooling, dropout).
        image_size: images are squashed to image_size x image_size pixels.
        epochs: passes over the training images.
        batch_size: the global batch (split across devices by a mirrored strategy).
        learning_rate: Adam's step size (the starting one, with a schedule).
        lr_schedule: "constant" keeps `learning_rate`; "cosine" decays it to 0 along a half cosine over the
            planned epochs, so the last epochs take small steps and settle.
        seed: one seed for the validation split, shuffling, augmentation and weight initialisation.
        validation: "split" holds out `validation_fraction` of the training folder, keeping near-duplicate
            images on one side so nothing leaks; "test" uses the dataset's own test split.
        validation_fraction: share of training images held out when `validation` is "split".
        early_stopping_patience: stop after this many epochs without a better validation accuracy; 0 never
            stops.
        strategy: "auto" picks MirroredStrategy when several GPUs are visible, else the default strategy;
            "multiworker" trains over the machines of the cluster in TF_CONFIG (`training.strategy`).
        class_weights: "none" counts every training image alike; "balanced" weights each image's loss by
            n_images / (n_classes * n_images_of_its_class) over the training side, so a smaller class counts
            as much as a larger one.
        precision: "float32", "bfloat16" (mixed: bfloat16 compute, float32 weights and softmax), or "auto":
            bfloat16 only where a short timed probe finds it faster on this CPU or GPU for this model, image
            size and batch (`training.precision.resolve_precision`). Saved models are float32 either way.
        augment: the random augmentation applied to training images.
    """

    data_dir: str = ""
    recipe: str = "studio"
    model: str = "compact"
    image_size: int = 64
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    seed: int = 1337
    validation: str = "split"
    validation_fraction: float = 0.2
    early_stopping_patience: int = 0
    strategy: str = "auto"
    class_weights: str = "none"
    precision: str = "auto"
    augment: AugmentConfig = field(default_factory=lambda: STUDIO_AUGMENT)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, not {self.model!r}.")
        if self.validation not in VALIDATION_SOURCES:
            raise ValueError(f"validation must be 'split' or 'test', not {self.validation!r}.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}."
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}.")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(
                f"class_weights must be one of {', '.join(CLASS_WEIGHTS)}, not {self.class_weights!r}."
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}.")
        for name in ("data_dir", "recipe"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be text, not {getattr(self, name)!r}.")
        if not isinstance(self.augment, AugmentConfig):
            raise ValueError(
                f"augment must be a set of augmentation settings (a JSON object), not {self.augment!r}."
            )
        check_number("image_size", self.image_size, low=16, high=512, integer=True)
        check_number("epochs", self.epochs, low=1, integer=True)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("learning_rate", self.learning_rate, low=0, low_open=True)
        check_number(
            "validation_fraction", self.validation_fraction, low=0, high=1, low_open=True, high_open=True
        )
        check_number("early_stopping_patience", self.early_stopping_patience, low=0, integer=True)
        check_number("seed", self.seed, low=0, high=MAX_SEED, integer=True)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        if isinstance(data.get("augment"), dict):
            data["augment"] = AugmentConfig.from_dict(data["augment"])
        return _from_dict(cls, data)


# Named starting points. "pretrained", the default, fine-tunes ImageNet's EfficientNet-Lite0 at 128 px:
# features learnt from a million photos carry over to drawings and fan art that the episodes' frames never
# show (on independent pictures it is right far more often than "studio": the README's accuracy table), and
# it trains on simpsons4-full within the 10-minute budget on a 2-core CPU. "studio" trains the compact CNN
# from scratch; "quick" trains only a softmax head on Lite0's frozen features; "tutorial" reproduces the seed
# exactly (its network and augmentation, 10 epochs of batch 32, Adam at 1e-3, validated on the test split).
RECIPES: dict[str, TrainConfig] = {
    "pretrained": TrainConfig(
        recipe="pretrained", model="lite0", image_size=128, epochs=6, learning_rate=3e-4, lr_schedule="cosine"
    ),
    "studio": TrainConfig(),
    "quick": TrainConfig(recipe="quick", model="lite0-frozen", image_size=96, epochs=8, learning_rate=1e-3),
    "tutorial": TrainConfig(
        recipe="tutorial",
        model="tutorial",
        image_size=64,
        epochs=10,
        batch_size=32,
        learning_rate=1e-3,
        lr_schedule="constant",
        validation="test",
        early_stopping_patience=0,
        augment=AugmentConfig(),
    ),
}


# What each recipe is for, in a few words (the Train page's recipe picker and `train --help`).
RECIPE_NOTES: dict[str, str] = {
    "pretrained": "ImageNet's EfficientNet-Lite0, fine-tuned (the default)",
    "studio": "a compact CNN trained from scratch",
    "quick": "a head on EfficientNet-Lite0's frozen features, in seconds",
    "tutorial": "the seed, unchanged",
}
DEFAULT_RECIPE = "pretrained"


def recipe(name: str) -> TrainConfig:
    """The recipe `name`'s TrainConfig (see `RECIPES`)."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}: choose one of {', '.join(RECIPES)}.")
    return RECIPES[name]


COLOURS = ("rgb", "greyscale")
FITS = ("squash", "centre-crop")
# How a greyscale model sees an RGB picture: Teachable Machine's luma weights, applied to float pixels.
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)


@dataclass(frozen=True)
class ModelInput:
    """What a run's model takes and how a picture becomes it. Prediction, evaluation, Grad-CAM and exports all
    prepare pictures from this one record, so a model imported from elsewhere sees pictures as its maker
    prepared them (a trained run's is `for_training`).

    Attributes:
        size: pictures become size x size pixels.
        colour: "rgb", or "greyscale": one channel, `GREY_WEIGHTS` applied to the RGB pixels.
        fit: "squash" resizes the whole picture to a square (training does); "centre-crop" first cuts the
            largest centred square, keeping the picture's proportions (Teachable Machine does).
        scale, offset: the model sees each pixel value (0-255) times `scale` plus `offset`.
    """

    size: int
    colour: str = "rgb"
    fit: str = "squash"
    scale: float = 1.0 / 255.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        check_number("size", self.size, low=1, integer=True)
        if self.colour not in COLOURS:
            raise ValueError(f"colour must be one of {', '.join(COLOURS)}, not {self.colour!r}.")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}, not {self.fit!r}.")
        check_number("scale", self.scale, low=0, low_open=True)
        check_number("offset", self.offset)

    @property
    def channels(self) -> int:
        return 1 if self.colour == "greyscale" else 3

    @classmethod
    def for_training(cls, config: TrainConfig) -> ModelInput:
        """A trained run's input: its images squashed to `image_size`, RGB, times its `rescale`."""
        return cls(size=config.image_size, scale=config.augment.rescale)

    def describe(self) -> str:
        """One line, e.g. "224x224 RGB, centre square, pixel values x / 127.5 - 1"."""
        colour = "RGB" if self.colour == "rgb" else "greyscale"
        fit = "whole picture squashed" if self.fit == "squash" else "centre square"
        divisor = 1.0 / self.scale
        values = f"x / {divisor:g}" if abs(divisor * 2 - round(divisor * 2)) < 1e-6 else f"x * {self.scale:g}"
        if self.offset:
            values += f" {'-' if self.offset < 0 else '+'} {abs(self.offset):g}"
        return f"{self.size}x{self.size} {colour}, {fit}, pixel values {values}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ModelInput:
        if not isinstance(data, dict):
            raise ValueError(f"a model input must be a JSON object, not {data!r}.")
        return _from_dict(cls, data)


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} field(s): {', '.join(unknown)}.")
    return cls(**data)
