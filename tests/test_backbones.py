"""The pretrained EfficientNet-Lite0 backbone: the torch-free `.pth` reader (including its refusal to run
code), the conversion (checked against ImageNet answers on real photographs), and the registered models."""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from simpsons_core.training.backbones.pth_reader import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    RefusedGlobalError,
    read_state_dict,
)

# ImageNet classes: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso.
CATS = {281, 282, 285}
ESPRESSO = 967


@pytest.fixture(scope="module")
def lite0_home(module_workspace: Path) -> Path:
    """One SIMPSONS_HOME for this module's model tests, so the weights are converted once, not per test."""
    return module_workspace


def shipped_pth() -> Path:
    from simpsons_core.training.backbones.lite0 import pth_path

    return pth_path()


# --- the reader -------------------------------------------------------------------------------------------


def test_reader_reads_the_shipped_state_dict():
    state = read_state_dict(shipped_pth())
    assert len(state) == 296
    expected = {
        "_conv_stem.weight": (32, 3, 3, 3),
        "_bn0.running_var": (32,),
        "_blocks.0._depthwise_conv.weight": (32, 1, 3, 3),
        "_blocks.1._expand_conv.weight": (96, 16, 1, 1),
        "_blocks.15._project_conv.weight": (320, 1152, 1, 1),
        "_conv_head.weight": (1280, 320, 1, 1),
        "_fc.weight": (1000, 1280),
        "_fc.bias": (1000,),
    }
    for key, shape in expected.items():
        assert state[key].shape == shape, key
        assert state[key].dtype == np.float32
        assert state[key].flags.c_contiguous
    assert "_blocks.0._expand_conv.weight" not in state  # the first block does not expand
    assert state["_bn1.num_batches_tracked"].dtype == np.int64
    # variances are never negative (some are exactly 0: channels that are always off)
    assert all(np.all(value >= 0) for key, value in state.items() if key.endswith("running_var"))
    assert all(np.all(np.isfinite(value)) for value in state.values())


class _Global:
    """A name the test pickler writes as a GLOBAL opcode without importing it (there is no torch here)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists that a reduce function be callable; this one never runs
        raise AssertionError("only written, never called")


class _Storage:
    def __init__(self, key: str, data: np.ndarray, view: tuple[str, int, int] | None = None) -> None:
        self.key, self.data, self.view = key, data, view


class _Tensor:
    """Pickles as torch does: `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.args = (storage, offset, size, stride, False, OrderedDict())

    def __reduce__(self):
        return _Global("torch._utils", "_rebuild_tensor_v2"), self.args


_STORAGE_TYPES = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


class _TorchLikePickler(pickle._Pickler):  # the pure-Python pickler, whose save() can be extended
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        else:
            super().save(obj, save_persistent_id)

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        kind = _Global("torch", _STORAGE_TYPES[obj.data.dtype])
        return ("storage", kind, obj.key, "cpu", obj.data.size, obj.view)


def _dumps(obj) -> bytes:
    buffer = io.BytesIO()
    _TorchLikePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def write_legacy(path: Path, state: OrderedDict, storages: list[_Storage]) -> None:
    """A legacy `torch.save` file, byte for byte the layout torch writes."""
    with path.open("wb") as handle:
        for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        handle.write(_dumps(state))
        pickle.dump([storage.key for storage in storages], handle, protocol=2)
        for storage in storages:
            handle.write(
                struct.pack("<q", storage.data.size)
                + storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes()
            )


def write_zip(path: Path, state: OrderedDict, storages: list[_Storage]) -> None:
    """A zip `torch.save` file: `archive/data.pkl` plus one `archive/data/<key>` per storage."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _dumps(state))
        archive.writestr("archive/byteorder", "little")
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.data.tobytes())


def strided_state() -> tuple[OrderedDict, list[_Storage], dict[str, np.ndarray]]:
    """Tensors sharing storages through offsets, strides and a transpose, with their expected values."""
    floats = _Storage("0", np.arange(12, dtype=np.float32))
    longs = _Storage("1", np.arange(100, 106, dtype=np.int64))
    grid = floats.data.reshape(3, 4)
    state = OrderedDict(
        [
            ("grid", _Tensor(floats, 0, (3, 4), (4, 1))),
            ("transposed", _Tensor(floats, 0, (4, 3), (1, 4))),
            ("every_third", _Tensor(floats, 2, (3,), (3,))),
            ("scalar", _Tensor(floats, 7, (), ())),
            ("empty", _Tensor(floats, 0, (0, 4), (4, 1))),
            ("longs", _Tensor(longs, 1, (2, 2), (2, 1))),
        ]
    )
    expected = {
        "grid": grid,
        "transposed": grid.T,
        "every_third": np.array([2, 5, 8], np.float32),
        "scalar": np.array(7, np.float32),
        "empty": np.zeros((0, 4), np.float32),
        "longs": np.array([[101, 102], [103, 104]], np.int64),
    }
    return state, [floats, longs], expected


@pytest.mark.parametrize("writer", [write_legacy, write_zip])
def test_reader_honours_offsets_and_strides_in_both_formats(tmp_path: Path, writer):
    state, storages, expected = strided_state()
    path = tmp_path / "strided.pth"
    writer(path, state, storages)
    got = read_state_dict(path)
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)
        assert (got[key].flags.c_contiguous and got[key].flags.owndata) or got[key].size == 0


def test_reader_resolves_legacy_storage_views(tmp_path: Path):
    root = _Storage("root", np.arange(12, dtype=np.float32))
    view = _Storage("root", root.data, view=("view", 4, 6))  # elements 4..9 of the root
    state = OrderedDict([("whole", _Tensor(root, 0, (12,), (1,))), ("part", _Tensor(view, 1, (5,), (1,)))])
    path = tmp_path / "views.pth"
    write_legacy(path, state, [root])
    got = read_state_dict(path)
    np.testing.assert_array_equal(got["part"], np.arange(5, 10, dtype=np.float32))
    np.testing.assert_array_equal(got["whole"], root.data)


class _RunsACommand:
    """What an attacker would pickle: loading it calls os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_reader_refuses_a_pickle_that_names_another_global_and_never_calls_it(tmp_path: Path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(OrderedDict([("weight", _RunsACommand(f"touch {marker}"))]), protocol=2)
    legacy = tmp_path / "evil.pth"
    with legacy.open("wb") as handle:
        for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        handle.write(payload)
    bare = tmp_path / "bare.pth"
    bare.write_bytes(pickle.dumps(_RunsACommand(f"touch {marker}")))
    zipped = tmp_path / "evil-zip.pth"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("archive/data.pkl", payload)

    for path in (legacy, bare, zipped):
        with pytest.raises(pickle.UnpicklingError, match=r"Refusing to load the global (os|posix)\.system"):
            read_state_dict(path)
    with pytest.raises(RefusedGlobalError):
        read_state_dict(legacy)
    assert not marker.exists()


def test_reader_rejects_files_that_are_not_state_dicts(tmp_path: Path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        read_state_dict(garbage)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(shipped_pth().read_bytes()[:100_000])
    with pytest.raises(ValueError, match="ends early"):
        read_state_dict(truncated)
    cut_in_a_pickle = tmp_path / "cut.pth"
    cut_in_a_pickle.write_bytes(shipped_pth().read_bytes()[:1_000])
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        read_state_dict(cut_in_a_pickle)


def test_reader_and_registry_stay_free_of_tensorflow():
    """config.py imports the registry and the reader needs only numpy: neither may pull in TensorFlow."""
    code = (
        "import sys\n"
        "import simpsons_core.config\n"
        "from simpsons_core.training.models import MODELS\n"
        "from simpsons_core.training.backbones.pth_reader import read_state_dict\n"
        "from simpsons_core.training.backbones.lite0 import pth_path\n"
        "assert {'lite0', 'lite0-frozen'} <= set(MODELS), MODELS\n"
        "assert len(read_state_dict(pth_path())) == 296\n"
        "heavy = sorted(name for name in ('tensorflow', 'keras', 'torch') if name in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# --- the conversion and the models ------------------------------------------------------------------------


def imagenet_top5(model, picture: np.ndarray) -> list[tuple[int, float]]:
    from PIL import Image

    size = model.input_shape[1]
    image = Image.fromarray(picture).resize((size, size), Image.BILINEAR)
    batch = np.asarray(image, np.float32)[None] / 255.0  # the pipeline's default rescale
    probabilities = np.asarray(model.predict_on_batch(batch))[0]
    return [(int(i), float(probabilities[i])) for i in np.argsort(probabilities)[::-1][:5]]


def test_converted_weights_give_imagenet_answers_on_real_photos(lite0_home: Path):
    skimage_data = pytest.importorskip("skimage.data")
    from simpsons_core.training.backbones.lite0 import lite0_imagenet

    model = lite0_imagenet(224)
    cat = imagenet_top5(model, skimage_data.chelsea())  # a tabby cat
    coffee = imagenet_top5(model, skimage_data.coffee())  # a cup of espresso
    assert {index for index, _ in cat} >= CATS, cat  # tabby, tiger cat and Egyptian cat all in the top 5
    assert cat[0][0] in CATS and cat[0][1] > 0.5, cat
    assert coffee[0][0] == ESPRESSO and coffee[0][1] > 0.5, coffee


@pytest.mark.parametrize("size", [64, 96, 128, 224])
def test_backbone_gives_a_pooled_1280_vector_at_any_size(lite0_home: Path, size: int):
    from simpsons_core.training.backbones.lite0 import lite0_backbone

    backbone = lite0_backbone(size)
    assert type(backbone.layers[1]).__name__ == "Rescaling"
    images = np.random.default_rng(size).random((2, size, size, 3), dtype=np.float32)
    features = np.asarray(backbone.predict_on_batch(images))
    assert features.shape == (2, 1280)
    assert np.all(features >= 0) and np.all(features <= 6)  # average of ReLU6 outputs
    assert features.std() > 0


@pytest.mark.slow
def test_lite0_model_trains_one_step_and_round_trips_as_keras_file(lite0_home: Path, tmp_path: Path):
    import keras

    from simpsons_core.training.models import build_model, compile_model

    model = build_model("lite0", 96, 4)
    head = model.layers[-1]
    assert isinstance(head, keras.layers.Dense) and head.activation is keras.activations.softmax
    assert head.name == "predictions"
    compile_model(model, 1e-4)
    images = np.random.default_rng(0).random((8, 96, 96, 3), dtype=np.float32)
    labels = np.arange(8) % 4
    conv, norm = model.get_layer("head_conv"), model.get_layer("head_bn")
    kernel, moving_mean = np.array(conv.kernel.numpy()), np.array(norm.moving_mean.numpy())
    loss = model.train_on_batch(images, labels, return_dict=True)["loss"]
    assert np.isfinite(loss)
    assert not np.allclose(conv.kernel.numpy(), kernel)  # the backbone fine-tunes...
    np.testing.assert_array_equal(
        norm.moving_mean.numpy(), moving_mean
    )  # ...but its statistics stay ImageNet's

    path = tmp_path / "lite0.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom objects
    np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)
    assert not loaded.get_layer("head_bn").trainable and loaded.get_layer("head_conv").trainable


def test_lite0_frozen_trains_only_its_head(lite0_home: Path):
    from simpsons_core.training.models import build_model

    model = build_model("lite0-frozen", 64, 3)
    assert [weight.path for weight in model.trainable_weights] == ["predictions/kernel", "predictions/bias"]


def test_weights_are_converted_once_then_reused(workspace: Path):
    from simpsons_core.training.backbones.lite0 import ensure_weights, lite0_backbone, weights_path

    assert not weights_path().exists()
    lite0_backbone(64)
    cached = weights_path()
    assert cached.is_file() and cached.is_relative_to(workspace / "cache")
    before = cached.stat()
    lite0_backbone(96)
    assert ensure_weights() == cached
    after = cached.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert [path.name for path in cached.parent.iterdir()] == [cached.name]  # no temp file left behind
