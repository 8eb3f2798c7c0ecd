"""What a page served as files (images, downloads), for AppTest checks of their contents.

AppTest keeps media in a `MemoryMediaFileStorage` it creates and drops on every run; the fixture swaps in one
that also records each file by its URL's id, so a test can read a picture's pixels or a download's bytes.
Test modules load it with `pytest_plugins = ["media_capture"]`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import PurePosixPath

import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

ServedMedia = Callable[[str], bytes]


@pytest.fixture
def served_media(monkeypatch: pytest.MonkeyPatch) -> ServedMedia:
    """`served_media(url)`: the bytes served at `url` (an `st.image` value or a download button's URL)."""
    served: dict[str, bytes] = {}

    class Recording(MemoryMediaFileStorage):
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None) -> str:
            file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            served[file_id] = self.get_file(file_id).content
            return file_id

    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", Recording)
    return lambda url: served[PurePosixPath(url).stem]


def image_size(served_media: ServedMedia, url: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(served_media(url))).size
