"""Labelled image files to one uint8 array, decoded once: what training and evaluation read batches from.

Each file is decoded by `images.load_pixels` (as prediction does) into one array kept in memory or, for
datasets too big for memory, in a memory-mapped file cache that the next run maps instead of decoding. This
module does not need TensorFlow, so a training process decodes its images while TensorFlow is still being
imported (`training.train_in_foreground`).

Example:

    decoded = decode_images(layout.train, layout.classes, config.image_size)
    decoded.pixels.shape  # (N, size, size, 3), uint8
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from simpsons_core import atomic, paths
from simpsons_core.data.images import CountProgress, ImageError, load_pixels

CACHE_MODES = ("memory", "file")

# Pillow releases the GIL while it decodes and resizes, so threads decode in parallel without a process pool's
# start-up and copying costs.
DECODE_THREADS = max(2, min(4, os.cpu_count() or 1))

_CACHE_FORMAT = 1  # bump when the cached pixels would differ (e.g. a new resize filter)
_NAMES_IN_WARNING = 20
_COPY_ROWS = 1024


class Labelled(Protocol):
    """What decoding needs of an image: `layout.LabelledImage` has it."""

    path: Path
    label: str


@dataclass
class DecodedImages:
    """Decoded images in one uint8 array: row i of `pixels` is `paths[i]`, of class index `labels[i]`.

    Attributes:
        pixels: uint8 [N, size, size, 3], in memory or a read-only `np.memmap` of the file cache.
        labels: int32 [N], indices into the class names given to `decode_images`.
        paths: the file of each row.
        skipped: files left out, with the reason (unreadable, damaged, or a class the model does not know).
    """

    pixels: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def decode_images(
    items: Sequence[Labelled],
    class_names: Sequence[str],
    image_size: int,
    cache: str = "memory",
    progress: CountProgress | None = None,
    fit: str = "squash",
) -> DecodedImages:
    """Decode every image once to `image_size` x `image_size` uint8 pixels, skipping the ones that fail.

    Args:
        items: images with a `.path` and a `.label` (a class name).
        class_names: the model's classes in output order; `labels` index into it.
        image_size: the side of the square the images are squashed to.
        cache: "memory" keeps the pixels in RAM; "file" keeps them in a memory-mapped file in the workspace
            cache, keyed by the files' paths, sizes and modification times and the image size: the next run
            with the same files maps it instead of decoding, and datasets bigger than RAM work.
        progress: called as `progress(done, total)` while decoding.
        fit: how a picture becomes a square (`images.resize`): "squash" (training's) or "centre-crop".

    A file that cannot be decoded, or whose class is not in `class_names`, is left out with a warning naming
    it and listed in `skipped`; it never stops decoding or training.
    """
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}, not {cache!r}.")
    class_index = {name: index for index, name in enumerate(class_names)}
    known = [item for item in items if item.label in class_index]
    skipped = [
        (Path(item.path), f"{item.path}: its class {item.label!r} is not one of the model's classes")
        for item in items
        if item.label not in class_index
    ]
    files = [Path(item.path) for item in known]
    if cache == "file":
        pixels, failures = _decode_with_file_cache(files, image_size, progress, fit)
    else:
        pixels, failures = _decode_in_memory(files, image_size, progress, fit)
    failed = dict(failures)
    kept = [row for row in range(len(files)) if row not in failed]
    skipped += [(files[row], reason) for row, reason in failures]
    if skipped:
        _warn_skipped(skipped, len(items))
    return DecodedImages(
        pixels=pixels,
        labels=np.array([class_index[known[row].label] for row in kept], dtype=np.int32),
        paths=[files[row] for row in kept],
        skipped=skipped,
    )


def _decode_in_memory(files: list[Path], image_size: int, progress: CountProgress | None, fit: str):
    pixels = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    failures = _decode_rows(files, image_size, pixels, progress, fit)
    if failures:
        pixels = np.delete(pixels, [row for row, _ in failures], axis=0)
    return pixels, failures


def _decode_with_file_cache(files: list[Path], image_size: int, progress: CountProgress | None, fit: str):
    """The pixels as a read-only memory map of a raw file in the cache (raw, not .npy, so that TensorFlow can
    map it too), decoding only when no entry matches the files."""
    folder = paths.cache_dir() / "decoded"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / _cache_key(files, image_size, fit)
    data_path, manifest_path = stem.with_suffix(".u8"), stem.with_suffix(".json")
    cached = _read_file_cache(data_path, manifest_path, len(files), image_size)
    if cached is not None:
        if progress:
            progress(len(files), len(files))
        return cached
    if not files:
        return np.empty((0, image_size, image_size, 3), np.uint8), []
    with _temp_memmap(folder, (len(files), image_size, image_size, 3)) as (decoded_path, decoded):
        failures = _decode_rows(files, image_size, decoded, progress, fit)
        failed = {row for row, _ in failures}
        kept = np.array([row for row in range(len(files)) if row not in failed], dtype=np.int64)
        if not failures:
            decoded.flush()
            _publish(decoded_path, data_path, manifest_path, decoded.shape, failures)
        elif len(kept):
            with _temp_memmap(folder, (len(kept), *decoded.shape[1:])) as (compact_path, compact):
                for start in range(0, len(kept), _COPY_ROWS):
                    compact[start : start + _COPY_ROWS] = decoded[kept[start : start + _COPY_ROWS]]
                compact.flush()
                _publish(compact_path, data_path, manifest_path, compact.shape, failures)
        else:
            return np.empty((0, *decoded.shape[1:]), np.uint8), failures
    return _open_pixels(data_path, (len(kept), *decoded.shape[1:])), failures


def _cache_key(files: list[Path], image_size: int, fit: str) -> str:
    entries = []
    for file in files:
        try:
            stat = file.stat()
            entries.append((os.path.abspath(file), stat.st_size, stat.st_mtime_ns))
        except OSError:
            entries.append((str(file), -1, -1))
    text = json.dumps([_CACHE_FORMAT, image_size, entries] + ([fit] if fit != "squash" else []))
    return f"pixels-{image_size}px-{len(files)}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def _read_file_cache(data_path: Path, manifest_path: Path, count: int, image_size: int):
    """(pixels, failures) from a complete cache entry, or None when there is none or it does not fit."""
    try:
        manifest = json.loads(manifest_path.read_text())
        failures = [(int(row), str(reason)) for row, reason in manifest["failures"]]
        shape = tuple(manifest["shape"])
        if shape != (count - len(failures), image_size, image_size, 3):
            return None
        return _open_pixels(data_path, shape), failures
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _open_pixels(data_path: Path, shape: tuple[int, ...]) -> np.ndarray:
    return np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)


@contextmanager
def _temp_memmap(folder: Path, shape: tuple[int, ...]) -> Iterator[tuple[Path, np.memmap]]:
    """A writable memory-mapped file at a temp path in `folder`, deleted on exit unless moved into place."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=".pixels-", suffix=".tmp")
    os.close(handle)
    path = Path(name)
    try:
        yield path, np.memmap(path, dtype=np.uint8, mode="w+", shape=shape)
    finally:
        path.unlink(missing_ok=True)


def _publish(
    data_tmp: Path,
    data_path: Path,
    manifest_path: Path,
    shape: tuple[int, ...],
    failures: list[tuple[int, str]],
) -> None:
    """Manifest first, then the data by rename: an entry is used only when both exist and agree."""
    atomic.write_json(manifest_path, {"shape": list(shape), "failures": failures})
    os.replace(data_tmp, data_path)


def _decode_rows(
    files: list[Path], image_size: int, out: np.ndarray, progress: CountProgress | None, fit: str
):
    """Fill out[i] with file i's pixels, in threads; returns [(row, reason)] for the files that failed."""

    def decode(row: int) -> str | None:
        try:
            out[row] = load_pixels(files[row], image_size, fit)
        except ImageError as error:
            return str(error)
        except Exception as error:  # one bad file must never stop the other thousands
            return f"{files[row]} could not be decoded: {error}"
        return None

    failures = []
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="decode") as pool:
        for row, reason in enumerate(pool.map(decode, range(len(files)))):
            if reason is not None:
                failures.append((row, reason))
            if progress:
                progress(row + 1, len(files))
    return failures


def _warn_skipped(skipped: list[tuple[Path, str]], total: int) -> None:
    names = "; ".join(reason for _, reason in skipped[:_NAMES_IN_WARNING])
    more = f"; and {len(skipped) - _NAMES_IN_WARNING} more" if len(skipped) > _NAMES_IN_WARNING else ""
    warnings.warn(f"Skipped {len(skipped)} of {total} images: {names}{more}.", stacklevel=3)
