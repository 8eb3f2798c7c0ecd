"""The embedded demo dataset: cartoon heads drawn with Pillow, so the app and tests never need real frames.

Each class differs the way the characters do: Bart's spiky hair, Homer's bald head with two hairs and stubble,
Lisa's star-shaped hair, Marge's tall blue beehive. Position, scale, rotation, skin tone, background, clutter
(some of it yellow or blue, like the heads) and noise are random, so a CNN has something real to learn and
does not reach 100% in one epoch. Every image has its own random stream keyed by (seed, split, class, index):
the same seed gives byte-identical files, and a larger dataset keeps the smaller one's images.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from simpsons_core import paths

CLASSES = ("bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson")
TRAIN_FOLDER = "simpsons_trainset"
TEST_FOLDER = "simpson_testset"

# Heads are drawn on a canvas this much larger than the output, then shrunk: smooth edges at any size.
SUPERSAMPLE = 2
SKIN = (255, 217, 15)
BEEHIVE_BLUE = (40, 80, 200)
Colour = tuple[int, int, int]


def generate_demo_dataset(
    out: Path, train_per_class: int = 80, test_per_class: int = 20, seed: int = 0, size: int = 96
) -> Path:
    """Draw the demo dataset into `out` in the tutorial's layout and return `out`.

    Args:
        out: a folder that does not exist yet or is empty.
        train_per_class: images per class in `simpsons_trainset/<class>/pic_NNNN.jpg`.
        test_per_class: images per class in `simpson_testset/<class>/<class>_N.jpg`.
        seed: the same seed gives byte-identical files.
        size: width and height of every image, in pixels.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} already exists and is not empty; choose a new folder for the demo dataset.")
    if train_per_class < 1 or test_per_class < 0 or size < 16:
        raise ValueError("train_per_class must be at least 1, test_per_class at least 0, size at least 16.")
    splits = ((TRAIN_FOLDER, train_per_class), (TEST_FOLDER, test_per_class))
    for split_index, (folder, count) in enumerate(splits):
        for class_index, name in enumerate(CLASSES):
            class_dir = out / folder / name
            class_dir.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                rng = np.random.default_rng([seed, split_index, class_index, index])
                file_name = f"pic_{index:04d}.jpg" if split_index == 0 else f"{name}_{index}.jpg"
                (class_dir / file_name).write_bytes(_jpeg(draw_scene(name, rng, size)))
    return out


def ensure_demo_dataset() -> Path:
    """The demo dataset in the workspace, generated once; concurrent callers never see a half-written one."""
    target = paths.datasets_dir() / "demo"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".demo-"))
    try:
        generate_demo_dataset(staging)
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():  # not a lost race with another process: a real failure
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def draw_scene(name: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One RGB picture of character `name`: background, clutter, the head, foreground clutter, noise."""
    canvas_size = size * SUPERSAMPLE
    scene = Image.new("RGB", (canvas_size, canvas_size), _random_colour(rng))
    draw = ImageDraw.Draw(scene)
    for _ in range(int(rng.integers(3, 9))):
        _clutter(draw, rng, canvas_size)
    head = _draw_head(name, rng, canvas_size)
    scale = rng.uniform(0.55, 0.95)
    head = head.resize((int(canvas_size * scale),) * 2, Image.Resampling.BILINEAR)
    head = head.rotate(rng.uniform(-25, 25), resample=Image.Resampling.BILINEAR, expand=True)
    if rng.random() < 0.5:
        head = head.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    slack = canvas_size - head.width
    x = int(rng.integers(min(0, slack) - head.width // 6, max(0, slack) + head.width // 6 + 1))
    y = int(rng.integers(min(0, slack) - head.height // 6, max(0, slack) + head.height // 6 + 1))
    scene.paste(head, (x, y), head)
    for _ in range(int(rng.integers(0, 3))):
        _clutter(draw, rng, canvas_size, small=True)
    scene = scene.resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.3:
        scene = scene.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    pixels = np.asarray(scene, dtype=np.float32) + rng.normal(0, rng.uniform(3, 18), (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _random_colour(rng: np.random.Generator) -> Colour:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _jitter(colour: Colour, rng: np.random.Generator, amount: int) -> Colour:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)  # type: ignore[return-value]


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, small: bool = False) -> None:
    """A random shape; a third of them in the heads' own yellow or blue, so colour alone does not decide."""
    roll = rng.random()
    colour = _jitter(SKIN, rng, 30) if roll < 0.2 else _jitter(BEEHIVE_BLUE, rng, 30) if roll < 0.33 else None
    colour = colour or _random_colour(rng)
    extent = size // 6 if small else size // 2
    x0, y0 = (int(v) for v in rng.integers(-extent // 2, size, 2))
    x1, y1 = x0 + int(rng.integers(4, extent + 5)), y0 + int(rng.integers(4, extent + 5))
    shape = int(rng.integers(0, 3))
    if shape == 0:
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif shape == 1:
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    else:
        draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(2, 10)))


def _draw_head(name: str, rng: np.random.Generator, size: int) -> Image.Image:
    """The head on a transparent square of side `size`, face centred in the lower part."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    skin = _jitter(SKIN, rng, 18)
    unit = size / 10  # every feature is placed on a 10 x 10 grid over the square
    HAIR_STYLES[name](draw, rng, unit, skin)
    _face(draw, rng, unit, skin, stubble=name == "homer_simpson")
    return layer


def _bart_hair(draw: ImageDraw.ImageDraw, rng: np.random.Generator, u: float, skin: Colour) -> None:
    """Bart: a tall, flat-topped skull crowned with a row of sharp spikes."""
    draw.rounded_rectangle((3 * u, 3 * u, 7 * u, 9 * u), radius=u, fill=skin)
    spikes = int(rng.integers(7, 11))
    step = 4 * u / spikes
    for k in range(spikes):
        left = 3 * u + k * step
        tip = 1.2 * u + rng.uniform(-0.4, 0.4) * u
        draw.polygon([(left, 3.2 * u), (left + step / 2, tip), (left + step, 3.2 * u)], fill=skin)


def _homer_hair(draw: ImageDraw.ImageDraw, rng: np.random.Generator, u: float, skin: Colour) -> None:
    """Homer: a round bald skull with two thin curled hairs on top and a zigzag of hair above the ear."""
    draw.ellipse((2.6 * u, 2.4 * u, 7.4 * u, 9.2 * u), fill=skin)
    dark = _jitter((40, 30, 20), rng, 20)
    for offset in (-0.5, 0.3):
        x = 5 * u + offset * u
        draw.arc((x - 0.8 * u, 1.4 * u, x + 0.8 * u, 3.2 * u), 190, 350, fill=dark, width=max(1, int(u / 5)))
    zigzag = [(6.6 * u + (k % 2) * 0.4 * u, 4.6 * u + k * 0.35 * u) for k in range(6)]
    draw.line(zigzag, fill=dark, width=max(1, int(u / 6)))


def _lisa_hair(draw: ImageDraw.ImageDraw, rng: np.random.Generator, u: float, skin: Colour) -> None:
    """Lisa: a round head ringed by the points of a star."""
    cx, cy = 5 * u, 5.6 * u
    points = int(rng.integers(7, 10))
    twist = rng.uniform(0, math.pi / points)
    for k in range(points):
        angle = math.pi + twist + k * math.pi / (points - 1)  # spread over the upper half
        tip = (cx + 3.6 * u * math.cos(angle), cy + 3.6 * u * math.sin(angle))
        left = (cx + 1.8 * u * math.cos(angle - 0.3), cy + 1.8 * u * math.sin(angle - 0.3))
        right = (cx + 1.8 * u * math.cos(angle + 0.3), cy + 1.8 * u * math.sin(angle + 0.3))
        draw.polygon([left, tip, right], fill=skin)
    draw.ellipse((3 * u, 3.4 * u, 7 * u, 8.8 * u), fill=skin)
    for k in range(7):  # the pearl necklace
        x = 3.6 * u + k * 0.47 * u
        draw.ellipse((x - 0.2 * u, 8.7 * u, x + 0.2 * u, 9.1 * u), fill=(245, 245, 245))


def _marge_hair(draw: ImageDraw.ImageDraw, rng: np.random.Generator, u: float, skin: Colour) -> None:
    """Marge: a face under a tall blue beehive that rises far above the head."""
    blue = _jitter(BEEHIVE_BLUE, rng, 25)
    height = rng.uniform(0.0, 0.8) * u
    draw.ellipse((3.2 * u, 0.2 * u - height, 6.8 * u, 5.5 * u), fill=blue)
    draw.ellipse((2.8 * u, 2.5 * u, 7.2 * u, 6.2 * u), fill=blue)
    draw.ellipse((3.2 * u, 4.4 * u, 6.8 * u, 9.2 * u), fill=skin)


HAIR_STYLES: dict[str, Callable[[ImageDraw.ImageDraw, np.random.Generator, float, Colour], None]] = {
    "bart_simpson": _bart_hair,
    "homer_simpson": _homer_hair,
    "lisa_simpson": _lisa_hair,
    "marge_simpson": _marge_hair,
}


def _face(draw: ImageDraw.ImageDraw, rng: np.random.Generator, u: float, skin: Colour, stubble: bool) -> None:
    """Big round eyes with pupils looking somewhere random, a nose, a mouth; Homer's grey-brown stubble."""
    if stubble:
        draw.ellipse((3.4 * u, 6.9 * u, 6.8 * u, 9.1 * u), fill=_jitter((180, 150, 100), rng, 12))
    gaze = rng.uniform(-0.25, 0.25, 2) * u
    for x in (4.2 * u, 5.6 * u):
        draw.ellipse((x - 0.75 * u, 5 * u, x + 0.75 * u, 6.5 * u), fill="white", outline="black")
        px, py = x + gaze[0], 5.75 * u + gaze[1]
        draw.ellipse((px - 0.18 * u, py - 0.18 * u, px + 0.18 * u, py + 0.18 * u), fill="black")
    draw.ellipse((4.6 * u, 6.4 * u, 5.6 * u, 7.2 * u), fill=skin, outline="black")
    smile = rng.uniform(0.2, 0.6) * u
    mouth = (4 * u, 7.4 * u - smile, 6.2 * u, 8.2 * u + smile)
    draw.arc(mouth, 20, 160, fill="black", width=max(1, int(u / 5)))
