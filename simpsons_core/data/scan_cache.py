"""What the scan learns from one file (size, mode, content digest, fingerprint or error), and its cache.

Decoding is the only slow part of a scan, so each file's facts are cached in `paths.cache_dir()`, keyed by
the file's path, size and modification time: a second scan of an unchanged folder decodes nothing. Its inode
is compared too (when the cache has it), so another file moved to a cached path (a dataset edit) with the
same size and time, as files unpacked from one archive have, is not taken for the file that was there. The
cache is one `.npz` per dataset root, written atomically; an unreadable cache is ignored and rebuilt. Decoding
uses a pool of worker processes when there is enough to do (started by `forkserver`, so a parent that already
runs TensorFlow's threads can call it safely).
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import struct
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from simpsons_core import atomic, paths
from simpsons_core.data.images import CountProgress, ImageError, check_image_file, open_rgb
from simpsons_core.data.near_duplicates import THUMB_SIZE, Fingerprints, fingerprint

# JPEGs decode at a reduced scale no smaller than this: 4x faster on 320x432 frames, and the 8x8 hash of the
# tutorial's frames is bit-identical to a full decode's (measured on simpsons4-mini and -full).
DRAFT_SIZE = 64
CACHE_VERSION = 1
EXIF_ORIENTATION = 0x0112
POOL_MIN_FILES = 400  # below this, starting worker processes costs more than it saves
_THUMB_BYTES = THUMB_SIZE * THUMB_SIZE * 3
_HASH_CHUNK = 1 << 20
_NAME = "The file"  # what messages call the file: the report names it already


@dataclass(frozen=True)
class FileInfo:
    """Facts about one file; `error` says why it cannot be used (then the image fields are empty)."""

    size: int  # bytes on disk
    mtime_ns: int
    digest: str  # content hash, for byte-identical duplicates ("" if unreadable)
    width: int = 0
    height: int = 0
    mode: str = ""  # Pillow's mode before conversion: "RGB", "L", "P", "CMYK", ...
    format: str = ""  # "JPEG", "PNG", ...
    average_hash: int = 0
    thumb: bytes = b""
    error: str = ""
    inode: int = 0  # 0: not recorded (a cache written before inodes were)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class Inspection:
    infos: list[FileInfo]
    decoded: int  # files decoded now; the rest came from the cache


def inspect_file(path: Path) -> FileInfo:
    """Read and decode one file; never raises: failures become `FileInfo.error`.

    Only a regular file of at most MAX_IMAGE_BYTES is opened (a named pipe would block, a device never end),
    and it is hashed in chunks up to its size as stat'ed.
    """
    try:
        stat = path.stat()
    except OSError as error:
        return FileInfo(0, 0, "", error=_unreadable(error))
    digest = ""
    try:
        check_image_file(stat, _NAME)
        with open(path, "rb") as handle:
            digest = _digest(handle, stat.st_size)
            handle.seek(0)
            image, header = _decode(handle)
    except ImageError as error:
        return FileInfo(stat.st_size, stat.st_mtime_ns, digest, error=str(error), inode=stat.st_ino)
    except OSError as error:
        return FileInfo(stat.st_size, stat.st_mtime_ns, "", error=_unreadable(error), inode=stat.st_ino)
    average_hash, thumb = fingerprint(image)
    return FileInfo(
        stat.st_size,
        stat.st_mtime_ns,
        digest,
        *header,
        average_hash=average_hash,
        thumb=thumb,
        inode=stat.st_ino,
    )


def _unreadable(error: OSError) -> str:
    return f"{_NAME} could not be read: {error.strerror or error}."


def _digest(handle: BinaryIO, size: int) -> str:
    """The content hash of the first `size` bytes of `handle`, read in chunks."""
    hasher = hashlib.blake2b(digest_size=16)
    left = size
    while left > 0:
        chunk = handle.read(min(_HASH_CHUNK, left))
        if not chunk:
            break
        hasher.update(chunk)
        left -= len(chunk)
    return hasher.hexdigest()


def _decode(handle: BinaryIO) -> tuple[Image.Image, tuple[int, int, str, str]]:
    """(upright RGB image at reduced scale, (width, height, mode, format) of the stored image).

    Parses the header once: `open_rgb` takes the opened image. When Pillow cannot even open the file,
    `open_rgb` is asked to, so the message is the same one training and prediction give.
    """
    try:
        opened = Image.open(handle)
    except (OSError, ValueError, Image.DecompressionBombError):
        open_rgb(handle, name=_NAME)  # raises the ImageError that words this failure
        raise
    width, height = opened.size
    if _orientation(opened) in (5, 6, 7, 8):  # stored on its side
        width, height = height, width
    header = (width, height, opened.mode, opened.format or "")
    return open_rgb(opened, draft_size=DRAFT_SIZE, name=_NAME), header


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, ValueError, SyntaxError, struct.error):  # damaged EXIF: the pixels may still be fine
        return 1


def inspect_files(
    root: Path, files: Sequence[Path], progress: CountProgress | None = None, workers: int | None = None
) -> Inspection:
    """`FileInfo` for each of `files` (all under `root`), from the cache where the file is unchanged.

    Args:
        root: the dataset root; the cache is kept per root.
        files: the files to inspect.
        progress: called as progress(done, total) while files are decoded.
        workers: decoding processes; default one per available core for 400 files or more, else 1.
    """
    cache_file = _cache_path(root)
    cached = _read_cache(cache_file)
    prefix = str(root).rstrip(os.sep) + os.sep
    keys = [_key(prefix, path) for path in files]
    todo = [
        k
        for k, (path, key) in enumerate(zip(files, keys, strict=True))
        if not _unchanged(cached.get(key), path)
    ]
    decoded = _decode_all([files[k] for k in todo], progress, workers)
    fresh = {keys[k]: info for k, info in zip(todo, decoded, strict=True)}
    if fresh:
        # Keep what other callers cached (a split inspects training images only) unless the file is gone.
        kept = {key: info for key, info in cached.items() if key in fresh or _exists(prefix, key)}
        _write_cache(cache_file, kept | fresh)
    return Inspection([fresh.get(key) or cached[key] for key in keys], decoded=len(todo))


def _exists(prefix: str, key: str) -> bool:
    return os.path.exists(key if os.path.isabs(key) else prefix + key)


def _unchanged(cached: FileInfo | None, path: Path) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return (
        cached is not None
        and cached.size == stat.st_size
        and cached.mtime_ns == stat.st_mtime_ns
        and cached.inode in (0, stat.st_ino)
    )


def fingerprints_of(infos: Sequence[FileInfo]) -> Fingerprints:
    parts = [(info.average_hash, info.thumb) if info.ok else None for info in infos]
    return Fingerprints.from_parts(parts, [info.digest for info in infos])


def _decode_all(todo: list[Path], progress: CountProgress | None, workers: int | None) -> list[FileInfo]:
    if workers is None:
        workers = _available_cores() if len(todo) >= POOL_MIN_FILES else 1
    if multiprocessing.current_process().daemon:
        workers = 1  # daemonic processes may not start children
    results: list[FileInfo] = []
    if workers <= 1:
        for path in todo:
            results.append(inspect_file(path))
            if progress:
                progress(len(results), len(todo))
        return results
    # Not "fork": a parent already running TensorFlow's threads could deadlock its children.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    chunk = max(1, min(64, len(todo) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for info in pool.map(inspect_file, todo, chunksize=chunk):
            results.append(info)
            if progress:
                progress(len(results), len(todo))
    return results


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _key(root: str, path: Path) -> str:
    """The cache key of `path`: relative to the dataset root when inside it (string work: pathlib is slow)."""
    text = str(path)
    if text.startswith(root):
        return text[len(root) :].replace(os.sep, "/")
    return str(path.resolve())


def _cache_path(root: Path) -> Path:
    name = hashlib.blake2b(str(Path(root).resolve()).encode(), digest_size=8).hexdigest()
    return paths.cache_dir() / "scan" / f"{name}.npz"


_TEXT_FIELDS = ("digest", "mode", "format", "error")


def _write_cache(path: Path, infos: dict[str, FileInfo]) -> None:
    values = list(infos.values())
    columns = {
        "version": np.array(CACHE_VERSION),
        "keys": np.array(list(infos), dtype=str),
        "size": np.array([info.size for info in values], dtype=np.int64),
        "mtime_ns": np.array([info.mtime_ns for info in values], dtype=np.int64),
        "inode": np.array([info.inode for info in values], dtype=np.uint64),
        "width": np.array([info.width for info in values], dtype=np.int64),
        "height": np.array([info.height for info in values], dtype=np.int64),
        "average_hash": np.array([info.average_hash for info in values], dtype=np.uint64),
        "thumb": np.frombuffer(b"".join(info.thumb or bytes(_THUMB_BYTES) for info in values), np.uint8),
    }
    columns.update(
        {name: np.array([getattr(info, name) for info in values], dtype=str) for name in _TEXT_FIELDS}
    )
    buffer = io.BytesIO()
    np.savez(buffer, **columns)
    atomic.write_bytes(path, buffer.getvalue())


def _read_cache(path: Path) -> dict[str, FileInfo]:
    """The cached facts by key; {} when there is no cache or it is damaged or from another version."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != CACHE_VERSION:
                return {}
            columns = {name: data[name].tolist() for name in data.files if name != "thumb"}
            thumbs = data["thumb"].tobytes()
        if len(thumbs) != len(columns["keys"]) * _THUMB_BYTES:
            return {}
        return {key: _cached_info(columns, thumbs, index) for index, key in enumerate(columns["keys"])}
    except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile):
        return {}


def _cached_info(columns: dict[str, list], thumbs: bytes, index: int) -> FileInfo:
    error = columns["error"][index]
    return FileInfo(
        size=columns["size"][index],
        mtime_ns=columns["mtime_ns"][index],
        digest=columns["digest"][index],
        width=columns["width"][index],
        height=columns["height"][index],
        mode=columns["mode"][index],
        format=columns["format"][index],
        average_hash=columns["average_hash"][index],
        thumb=b"" if error else thumbs[index * _THUMB_BYTES : (index + 1) * _THUMB_BYTES],
        error=error,
        inode=columns["inode"][index] if "inode" in columns else 0,
    )
