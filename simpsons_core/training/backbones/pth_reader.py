"""Read a PyTorch state dict (`torch.save(model.state_dict())`) into numpy arrays, without PyTorch.

Why: the ImageNet weights we start from ship as a `.pth` file, and installing torch (about 1 GB) to read 17 MB
of floats is out of proportion. Why not plain `pickle.load`: a pickle can call any importable function while
it loads, so a crafted file could run code. This reader's unpickler resolves only the few names a state dict
needs, each to a local stand-in that builds inert records; any other global is refused before anything runs.

Both formats are read:
- the legacy one (torch < 1.6, or `_use_new_zipfile_serialization=False`): a sequence of pickles (magic
  number, protocol version, system info, the state dict, the list of storage keys), then each storage in that
  order as an int64 little-endian element count followed by the raw little-endian data;
- the zip one (torch >= 1.6): `<name>/data.pkl` holds the same state-dict pickle, `<name>/data/<key>` each
  storage's raw bytes.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch's typed storage classes -> the little-endian numpy dtype of their elements.
STORAGE_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "FloatStorage": "<f4",
        "DoubleStorage": "<f8",
        "HalfStorage": "<f2",
        "LongStorage": "<i8",
        "IntStorage": "<i4",
        "ShortStorage": "<i2",
        "CharStorage": "i1",
        "ByteStorage": "u1",
        "BoolStorage": "?",
    }.items()
}


@dataclass(frozen=True)
class _StorageType:
    """Stands in for `torch.FloatStorage` and friends: only its element type matters."""

    name: str
    dtype: np.dtype


@dataclass
class _Storage:
    """One flat buffer, filled in after the pickle is read (the data follows it in the file)."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _StorageView:
    """A legacy storage view: elements [offset, offset + size) of a root storage."""

    root: _Storage
    offset: int
    size: int


@dataclass(frozen=True)
class _TensorRecord:
    """What `torch._utils._rebuild_tensor_v2` would build, kept as arguments until the storages are read."""

    storage: _Storage | _StorageView
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: Any, storage_offset: int, size: Any, stride: Any, requires_grad: Any = False, *_: Any
) -> _TensorRecord:
    if not isinstance(storage, _Storage | _StorageView):
        raise pickle.UnpicklingError("_rebuild_tensor_v2 got something that is not a storage.")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or storage_offset < 0 or min(stride, default=0) < 0:
        raise pickle.UnpicklingError(f"Bad tensor: size {size}, stride {stride}, offset {storage_offset}.")
    return _TensorRecord(storage, int(storage_offset), size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, *_: Any) -> Any:
    """`nn.Parameter` in a state dict saved with `keep_vars=True`: the tensor itself is all we need."""
    return data


# The only globals a state dict may name, each mapped to a harmless local implementation.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class RefusedGlobalError(pickle.UnpicklingError):
    """The file names a global outside the allowed list; nothing it names has been called."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED_GLOBALS`; turns persistent storage ids into `_Storage` records."""

    def __init__(self, file: io.BufferedIOBase, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"Refusing to load the global {module}.{name}: a state dict needs only tensors, and a pickle "
                "that names other callables could run code."
            ) from None

    def persistent_load(self, pid: Any) -> _Storage | _StorageView:
        if not isinstance(pid, tuple) or not pid or _text(pid[0]) != "storage" or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"Unsupported persistent id {pid!r}.")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"Unsupported storage type {storage_type!r}.")
        key = _text(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, storage_type.dtype, int(numel))
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        _view_key, offset, view_size = view
        if offset < 0 or offset + view_size > storage.numel:
            raise pickle.UnpicklingError(f"Storage view {view!r} lies outside storage {key}.")
        return _StorageView(storage, int(offset), int(view_size))


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state dict file as numpy arrays (same names, same shapes, native byte order).

    Raises `pickle.UnpicklingError` for a file that names any global besides tensor rebuilding, and
    `ValueError` for a file that is not a state dict in either format (a TorchScript archive, a tar file).
    """
    path = Path(path)
    with path.open("rb") as handle:
        if handle.read(4) == b"PK\x03\x04":
            return _read_zip(path)
        handle.seek(0)
        return _read_legacy(handle)


def _read_legacy(handle: io.BufferedIOBase) -> dict[str, np.ndarray]:
    storages: dict[str, _Storage] = {}

    def load() -> Any:
        # A fresh unpickler per pickle, like torch: each pickle has its own memo.
        try:
            return _RestrictedUnpickler(handle, storages).load()
        except RefusedGlobalError:
            raise
        except Exception as error:  # garbage or truncation: "invalid load key", EOFError, ...
            raise ValueError(f"{handle.name}: not a PyTorch state dict file ({error}).") from error

    magic = load()
    if magic != LEGACY_MAGIC_NUMBER:
        raise ValueError(f"{handle.name}: not a PyTorch legacy state dict (bad magic number).")
    protocol = load()
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise ValueError(f"{handle.name}: unsupported PyTorch file protocol {protocol!r}.")
    sys_info = load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ValueError(f"{handle.name}: written on a big-endian machine; not supported.")
    result = load()
    keys = load()
    if not isinstance(keys, list):
        raise ValueError(f"{handle.name}: the storage key list is missing.")
    for key in map(_text, keys):
        storage = storages.get(key)
        if storage is None:
            raise ValueError(f"{handle.name}: storage {key} is listed but no tensor uses it.")
        count = int.from_bytes(_read_exactly(handle, 8), "little", signed=True)
        if count != storage.numel:
            raise ValueError(f"{handle.name}: storage {key} has {count} elements, expected {storage.numel}.")
        raw = _read_exactly(handle, count * storage.dtype.itemsize)
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _materialize(result)


def _read_exactly(handle: io.BufferedIOBase, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise ValueError(f"{handle.name}: the file ends early (truncated download?).")
    return data


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = [name for name in names if name.endswith("data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path}: a zip without one <name>/data.pkl is not a PyTorch state dict.")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}constants.pkl" in names:
            raise ValueError(f"{path}: a TorchScript archive, not a state dict.")
        byteorder = f"{prefix}byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise ValueError(f"{path}: written in big-endian byte order; not supported.")
        storages: dict[str, _Storage] = {}
        result = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        for storage in storages.values():
            raw = archive.read(f"{prefix}data/{storage.key}")
            if len(raw) != storage.numel * storage.dtype.itemsize:
                raise ValueError(
                    f"{path}: storage {storage.key} has {len(raw)} bytes, not {storage.numel} elements."
                )
            storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _materialize(result)


def _materialize(result: Any) -> dict[str, np.ndarray]:
    if not isinstance(result, dict):
        raise ValueError(f"Expected a state dict (names -> tensors), got a {type(result).__name__}.")
    return {
        str(name): _to_array(value) if isinstance(value, _TensorRecord) else np.asarray(value)
        for name, value in result.items()
    }


def _to_array(record: _TensorRecord) -> np.ndarray:
    """The tensor's elements as a writable array of its own, honouring its storage offset and strides."""
    storage = record.storage
    if isinstance(storage, _StorageView):
        flat = storage.root.data[storage.offset : storage.offset + storage.size]
    else:
        flat = storage.data
    if flat is None:
        raise ValueError("A tensor's storage was never read (truncated file?).")
    if 0 in record.size:
        return np.zeros(record.size, dtype=flat.dtype)
    last = record.offset + sum((n - 1) * s for n, s in zip(record.size, record.stride, strict=True))
    if last >= flat.size:
        raise ValueError(f"A tensor reaches element {last} of a storage of {flat.size}.")
    view = np.lib.stride_tricks.as_strided(
        flat[record.offset :],
        shape=record.size,
        strides=tuple(s * flat.itemsize for s in record.stride),
        writeable=False,
    )
    # A copy: tensors may share a storage, and the storage buffer is read-only; native byte order for Keras.
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C", copy=True)
