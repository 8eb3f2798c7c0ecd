"""Reading any picture a user has into RGB pixels, one way for scanning, training and prediction.

Training and prediction must see identical pixels for the same file, so both go through `load_pixels`.
Every failure is an `ImageError` whose message names the problem in words a user understands.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from simpsons_core.config import FITS

# Called with (files done, files in all) while many files are read: the scan, the split, decoding.
CountProgress = Callable[[int, int], None]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

# A decompression-bomb guard: a tiny file can declare billions of pixels. 80 MP admits any phone or DSLR
# photo.
MAX_PIXELS = 80_000_000
# What one file may cost to read: the scan hashes every file, in several processes at once. The largest camera
# JPEG or PNG is a few tens of MB; a bigger "image" is a mistake (a video, a disk image).
MAX_IMAGE_BYTES = 100_000_000
# What a file whose bytes Pillow cannot decode is called, whatever Pillow's own words were.
DAMAGED = "the file is damaged or incomplete"

ImageSource = str | Path | bytes | BinaryIO | Image.Image


class ImageError(ValueError):
    """A picture that cannot be used, with a message that says why."""


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or "the image"


def image_file_stat(path: str | Path, name: str | None = None) -> os.stat_result:
    """`os.stat(path)` (following symbolic links) of a file that may be opened as an image; ImageError if not.

    Called before opening, because only a regular file can be an image (`check_image_file`). `name` is how
    messages call the file (default: its path).
    """
    name = name or str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError as error:
        raise ImageError(f"{name} does not exist.") from error
    except OSError as error:
        raise ImageError(f"{name} could not be read: {error.strerror or error}.") from error
    check_image_file(info, name)
    return info


def check_image_file(info: os.stat_result, name: str) -> None:
    """ImageError unless `info` is a regular file, not empty, of at most MAX_IMAGE_BYTES.

    Opening a named pipe waits for a writer forever, and a device such as /dev/zero never ends: neither may
    be opened, whatever its name says.
    """
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{name} is a folder, not an image.")
    if not stat.S_ISREG(info.st_mode):
        kind = _special_kind(info.st_mode)
        raise ImageError(f"{name} is not a regular file (it is {kind}); only regular files are images.")
    if info.st_size == 0:
        raise ImageError(f"{name} is empty (0 bytes).")
    if info.st_size > MAX_IMAGE_BYTES:
        raise ImageError(
            f"{name} is {info.st_size / 1_000_000:,.0f} MB, more than the {MAX_IMAGE_BYTES // 1_000_000} MB "
            "limit per image."
        )


def _special_kind(mode: int) -> str:
    kinds = {
        stat.S_ISFIFO: "a named pipe",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "a special file")


def open_rgb(source: ImageSource, draft_size: int | None = None, name: str | None = None) -> Image.Image:
    """Decode `source` to an upright RGB image.

    Handles EXIF rotation, transparency (composited on white), palette, greyscale, CMYK, 16-bit and the first
    frame of animations. `draft_size` lets JPEG decode at a reduced scale when only a small image is needed,
    which makes decoding large photos several times faster. `name` is how messages call the source (default:
    its path or file name).
    """
    name = name or _describe(source)
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, bytes):
            if not source:
                raise ImageError(f"{name} is empty (0 bytes).")
            source = io.BytesIO(source)
        elif isinstance(source, (str, Path)):
            image_file_stat(source, name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(source)
        except UnidentifiedImageError as error:
            raise ImageError(
                f"{name} is not an image Pillow can read (unknown or corrupt format)."
            ) from error
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageError(f"{name} declares too many pixels (a decompression-bomb guard).") from error
        except OSError as error:
            raise ImageError(f"{name} could not be read: {_reason(error)}.") from error
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixel limit "
            "(a decompression-bomb guard); shrink it first."
        )
    try:
        if draft_size and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except Image.DecompressionBombError as error:
        raise ImageError(f"{name} declares too many pixels (a decompression-bomb guard).") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name} could not be read: {_reason(error)}.") from error


def _reason(error: Exception) -> str:
    """Why a file could not be read, in plain words. The system's own reason ("Permission denied") is plain
    already; Pillow's ("Truncated File Read", "broken data stream", "could not create decoder object") all
    mean the bytes are not a whole image, which is what a user can act on."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.strerror or str(error)
    return DAMAGED


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if pixels.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(pixels * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGB" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def resize(image: Image.Image, size: int, fit: str = "squash") -> np.ndarray:
    """`size` x `size` uint8 HxWx3 pixels, with antialiased bilinear filtering. "squash" resizes the whole
    picture (as the tutorial did); "centre-crop" resizes its largest centred square (as Teachable Machine
    does), so a model trained on squares sees undistorted shapes."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, not {fit!r}.")
    box = centre_square(image.size) if fit == "centre-crop" else None
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, box=box), dtype=np.uint8)


def centre_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the largest square centred in a picture of `size` (width,
    height): what a "centre-crop" model input keeps of it."""
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def load_pixels(source: ImageSource, size: int, fit: str = "squash") -> np.ndarray:
    """The one way any image becomes model input pixels: uint8 array of shape (size, size, 3), the picture
    fitted to the square as `resize` does."""
    return resize(open_rgb(source, draft_size=size), size, fit)


# What a letterboxed thumbnail is padded with: Streamlit's light theme's secondary background, so the padding
# reads as the card's frame rather than as part of the picture.
LETTERBOX_FILL = (240, 242, 246)


def letterboxed(image: Image.Image, side: int) -> Image.Image:
    """`image` shrunk to fit a `side` x `side` square (a smaller one kept as it is, not blurred by
    enlarging) and centred on it, so pictures of any shape side by side take the same room and line up."""
    fitted = image.copy()
    fitted.thumbnail((side, side))
    box = Image.new("RGB", (side, side), LETTERBOX_FILL)
    box.paste(fitted.convert("RGB"), ((side - fitted.width) // 2, (side - fitted.height) // 2))
    return box
