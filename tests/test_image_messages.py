"""A damaged picture is described in plain words, naming the file once, whatever Pillow said about it
("Truncated File Read", "image file is truncated", "could not create decoder object")."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from simpsons_core.data.images import DAMAGED, ImageError, open_rgb


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "kept"),
    [("PNG", 20), ("BMP", 20), ("PNG", 0.5), ("JPEG", 0.5), ("GIF", 0.5), ("WEBP", 0.5)],
    ids=["png-header", "bmp-header", "png-half", "jpeg-half", "gif-half", "webp-half"],
)
def test_a_truncated_file_is_damaged_or_incomplete(fmt: str, kept: float) -> None:
    data = encoded(fmt)
    data = data[: kept if isinstance(kept, int) else int(len(data) * kept)]
    with pytest.raises(ImageError) as raised:
        open_rgb(data, name="corrupt.jpg")
    assert str(raised.value) == f"corrupt.jpg could not be read: {DAMAGED}."
