"""Every kind of picture a user may hand the Predictor: handled with the right pixels, or refused in words."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from simpsons_core.data import images
from simpsons_core.data.images import MAX_PIXELS
from simpsons_core.inference.predict import Predictor

pytest_plugins = ["run_fixtures"]

RED, BLUE = (220, 20, 20), (20, 20, 220)


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor.from_run(trained_run)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def halves(size=(40, 40), left=RED, right=BLUE) -> Image.Image:
    """Left half one colour, right half another: shows where pixels end up after rotation."""
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that declares width x height pixels: what a decompression bomb looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def assert_ok(predictor: Predictor, source) -> np.ndarray:
    """The source predicts without error, probabilities summing to 1; returns the pixels the model saw."""
    [result] = predictor.predict([source])
    assert result.ok, result.error
    assert result.label in predictor.labels
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    return predictor.load(source.getvalue() if isinstance(source, io.BytesIO) else source)


def mean_colour(pixels: np.ndarray) -> np.ndarray:
    return pixels.reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("JPEG", "RGB", {"quality": 95}),
        ("PNG", "RGB", {}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {}),
        pytest.param(
            "WEBP",
            "RGB",
            {"lossless": True},
            marks=pytest.mark.skipif(not features.check("webp"), reason="no WebP"),
        ),
    ],
)
def test_common_formats_give_the_picture_colours(
    predictor: Predictor, fmt: str, mode: str, options: dict
) -> None:
    pixels = assert_ok(predictor, encoded(Image.new(mode, (50, 30), RED), fmt, **options))
    assert np.abs(mean_colour(pixels) - RED).max() < 6


def test_png_transparency_is_composited_on_white(predictor: Predictor) -> None:
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))  # fully transparent black ...
    image.paste((*RED, 255), (0, 0, 20, 40))  # ... with an opaque red left half
    pixels = assert_ok(predictor, encoded(image, "PNG"))
    assert tuple(pixels[16, 2]) == RED
    assert tuple(pixels[16, -2]) == (255, 255, 255)


def test_gif_uses_the_first_frame(predictor: Predictor) -> None:
    frames = [Image.new("RGB", (30, 30), RED), Image.new("RGB", (30, 30), BLUE)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    pixels = assert_ok(predictor, data)
    assert np.abs(mean_colour(pixels) - RED).max() < 12


def test_greyscale_palette_and_cmyk(predictor: Predictor) -> None:
    grey = assert_ok(predictor, encoded(Image.new("L", (30, 30), 90), "PNG"))
    assert (grey == 90).all()
    palette = Image.new("RGB", (30, 30), RED).quantize(colors=4)
    assert palette.mode == "P"
    assert np.abs(mean_colour(assert_ok(predictor, encoded(palette, "PNG"))) - RED).max() < 4
    cmyk = Image.new("CMYK", (30, 30), (0, 255, 255, 0))  # full magenta and yellow: red
    red = mean_colour(assert_ok(predictor, encoded(cmyk, "JPEG", quality=95)))
    assert red[0] > 200 and red[1] < 40 and red[2] < 40


def test_sixteen_bit_png_is_scaled_not_clipped(predictor: Predictor) -> None:
    image = Image.fromarray(np.full((30, 30), 32896, dtype=np.uint16))  # half of 65535
    assert image.mode.startswith("I;16")
    pixels = assert_ok(predictor, encoded(image, "PNG"))
    assert np.abs(pixels.astype(int) - 128).max() <= 1


def test_tiny_image_is_upscaled(predictor: Predictor) -> None:
    pixels = assert_ok(predictor, encoded(Image.new("RGB", (1, 1), BLUE), "PNG"))
    assert pixels.shape == (predictor.image_size, predictor.image_size, 3)
    assert (pixels == BLUE).all()


def test_exif_rotation_is_applied(predictor: Predictor) -> None:
    """Orientation 6 (camera held upright, sensor landscape): the left half must come out on top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = assert_ok(predictor, encoded(halves((40, 20)), "JPEG", quality=95, exif=exif))
    top, bottom = mean_colour(pixels[:8]), mean_colour(pixels[-8:])
    assert np.abs(top - RED).max() < 30 and np.abs(bottom - BLUE).max() < 30
    unrotated = predictor.load(encoded(halves((40, 20)), "JPEG", quality=95))
    assert np.abs(mean_colour(unrotated[:, :8]) - RED).max() < 30


def test_pil_images_and_named_file_objects(predictor: Predictor) -> None:
    image = halves()
    upload = io.BytesIO(encoded(image, "PNG"))
    upload.name = "upload.png"
    from_pil, from_upload = predictor.predict([image, upload])
    assert from_pil.ok and from_upload.ok and from_upload.source == "upload.png"
    assert from_pil.probabilities == pytest.approx(from_upload.probabilities, abs=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: b"", "empty (0 bytes)"),
        (lambda tmp: b"\x00\x01 definitely not an image", "not an image Pillow can read"),
        (lambda tmp: half(encoded(noise(), "JPEG")), "damaged"),
        (lambda tmp: write(tmp / "notes.txt", b"Bart, Homer, Lisa, Marge\n"), "not an image Pillow can read"),
        (lambda tmp: tmp / "missing.jpg", "does not exist"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: png_header_only(9_000, 9_000), f"{MAX_PIXELS // 1_000_000} megapixel limit"),
        (lambda tmp: png_header_only(50_000, 50_000), "decompression-bomb"),
    ],
    ids=["empty", "garbage", "truncated-jpeg", "text-file", "missing", "folder", "huge", "bomb"],
)
def test_bad_inputs_get_a_specific_message_and_never_raise(
    predictor: Predictor, tmp_path: Path, make, message: str
) -> None:
    good = encoded(halves(), "PNG")
    before, bad, after = predictor.predict([good, make(tmp_path), good])
    assert not bad.ok and message in bad.error
    assert bad.label is None and bad.probabilities == {}
    assert before.ok and after.ok
    assert before.probabilities == pytest.approx(after.probabilities, abs=1e-6)  # batch position: float noise


def noise() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8))


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_letterboxed_images_of_any_shape_fill_the_same_square() -> None:
    wide = images.letterboxed(Image.new("RGB", (200, 100), "red"), 64)
    tall = images.letterboxed(Image.new("L", (30, 90), 0), 64)
    assert wide.size == tall.size == (64, 64) and wide.mode == tall.mode == "RGB"
    assert wide.getpixel((32, 0)) == images.LETTERBOX_FILL and wide.getpixel((32, 32)) == (255, 0, 0)
    assert tall.getpixel((0, 32)) == images.LETTERBOX_FILL and tall.getpixel((32, 32)) == (0, 0, 0)
    assert (
        images.letterboxed(Image.new("RGB", (10, 10), "blue"), 64).getpixel((0, 0)) == images.LETTERBOX_FILL
    )
