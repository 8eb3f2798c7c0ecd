"""A model in the Keras 2 JSON format (what TF.js's tfjs-layers and old Keras `.h5` files record), rebuilt as
one flat Keras 3 functional model, its weights loaded by name.

tfjs-layers writes Keras 2's format: `{"class_name": "Sequential" | "Model" | "Functional", "config": ...}`,
layers as `{"class_name", "config"}` with snake_case keys, nested models included, and functional inbound
nodes as `[[[layer, node, tensor, kwargs], ...]]`. Each layer's config is deserialised by
`keras.layers.deserialize` after a few translations (`translate_config`); nested models are inlined, so every
convolution sits at the top level, where Grad-CAM looks for it (`explain.last_conv_layer`). Weights are
matched by `<layer>/<weight>`: TF.js and Keras 2 call a depthwise convolution's kernel `depthwise_kernel`,
Keras 3 `kernel`.

A TF.js weights manifest is decoded here too (`read_tfjs_weights`): float32 only; quantised weights
(`quantization` entries) are refused rather than dequantised into a model that differs from the export. An
old Keras `.h5` holds the same JSON in its `model_config` attribute and its weights by name
(`read_keras2_h5`).

Example:

    model = build_model(topology)
    load_weights(model, read_tfjs_weights(manifest, read_file))
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

_FUNCTIONAL = ("Model", "Functional")
# Shape keys of a layer's config: the rebuilt model's one Input carries the shape instead.
_SHAPE_KEYS = ("batch_input_shape", "batch_shape", "input_shape", "input_dim", "batch_size")
# Keras 2 and TF.js name a depthwise kernel `depthwise_kernel`; Keras 3's DepthwiseConv2D calls it `kernel`.
_DEPTHWISE_KERNEL = "depthwise_kernel"
_FLOAT32_BYTES = 4
_NAMES_SHOWN = 5


def build_model(topology: dict[str, Any], name: str | None = None) -> keras.Model:
    """The model `topology` describes (a Keras 2 / tfjs-layers model config), as a flat Keras 3 functional
    model with untrained weights. Raises ValueError naming the layer that cannot be rebuilt."""
    import keras

    spec = topology.get("model_config", topology)  # the Python converter wraps it, tfjs-layers does not
    shape = input_shape(spec)
    inputs = keras.Input(shape=shape[1:], name="image")
    outputs = _call(spec, inputs)
    try:
        return keras.Model(inputs, outputs, name=name or _config(spec).get("name") or "imported")
    except ValueError as error:  # e.g. two layers of one name once nested models are inlined
        raise ValueError(f"The model cannot be rebuilt in Keras 3: {error}") from error


def read_keras2_h5(data: bytes, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray], str]:
    """(topology, weights by `<layer>/<weight>`, Keras version) of a whole model an old Keras saved as
    `.h5` (`name` is how messages call the file). Its weights are grouped by top-level layer, named like
    `Conv1/kernel:0` (or with a model prefix): they lose the prefix and `:0`, as `load_weights` wants."""
    import h5py

    try:
        handle = h5py.File(io.BytesIO(data), "r")
    except OSError as error:
        raise ValueError(f"{name} is not an HDF5 file that Keras could have written.") from error
    with handle:
        config = handle.attrs.get("model_config")
        if config is None:
            raise ValueError(f"{name} holds weights only (no model_config): export the whole Keras model.")
        group = handle.get("model_weights", handle)
        if "layer_names" not in group.attrs:
            raise ValueError(f"{name} is not in the Keras 2 layout (no layer_names attribute).")
        weights = {}
        for layer in map(_text, group.attrs["layer_names"]):
            for weight in map(_text, group[layer].attrs.get("weight_names", [])):
                key = "/".join(weight.split("/")[-2:]).removesuffix(":0")
                weights[key] = np.asarray(group[layer][weight], dtype=np.float32)
        return json.loads(_text(config)), weights, _text(handle.attrs.get("keras_version", "unknown"))


def base_model_name(topology: dict[str, Any]) -> str:
    """The name of the model the outer Sequentials start with (Teachable Machine's base, e.g.
    `mobilenetv2_0.35_224`: alpha and size), else the outer model's."""
    spec = topology.get("model_config", topology)
    while spec.get("class_name") == "Sequential" and _children(spec):
        spec = _children(spec)[0]
    return str(_config(spec).get("name") or "model")


def input_shape(spec: dict[str, Any]) -> tuple[int | None, ...]:
    """The model's input shape with the batch axis, [None, H, W, C], from its first layer that records one."""
    config = _config(spec)
    for key in ("batch_input_shape", "batch_shape"):
        if isinstance(config.get(key), list):
            return tuple(config[key])
    children = _children(spec)
    if children:
        return input_shape(children[0])
    raise ValueError("The model's topology records no input shape (no batch_input_shape on its first layer).")


def translate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """A Keras 2 / tfjs-layers layer config as Keras 3 takes it: no shape keys (the model's Input has them),
    no `groups` on DepthwiseConv2D (Keras 2 inherited it from Conv2D, always 1; Keras 3 refuses the argument:
    teachablemachine-community issue 403), a one-element `axis` list as its number."""
    config = {key: value for key, value in config.items() if key not in _SHAPE_KEYS}
    if kind == "DepthwiseConv2D":
        groups = config.pop("groups", 1)
        if groups != 1:
            raise ValueError(f"layer {config.get('name')!r} is a DepthwiseConv2D with groups={groups}.")
    axis = config.get("axis")
    if isinstance(axis, list) and len(axis) == 1:
        config["axis"] = axis[0]
    return config


def load_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Set every weight of `model` from `weights`, keyed `<layer>/<weight>` (a `depthwise_kernel` stands for a
    DepthwiseConv2D's `kernel`). Raises ValueError when a weight is missing, left over or of another shape:
    weights that do not fit the topology exactly would give a model that is quietly wrong."""
    import keras

    unused = dict(weights)
    missing, wrong = [], []
    for layer in model.layers:
        for variable in layer.weights:
            keys = [f"{layer.name}/{variable.name}"]
            if isinstance(layer, keras.layers.DepthwiseConv2D) and variable.name == "kernel":
                keys.insert(0, f"{layer.name}/{_DEPTHWISE_KERNEL}")
            key = next((k for k in keys if k in unused), None)
            if key is None:
                missing.append(keys[-1])
                continue
            value = unused.pop(key)
            if tuple(value.shape) != tuple(variable.shape):
                wrong.append(f"{key} {tuple(value.shape)} for {tuple(variable.shape)}")
                continue
            variable.assign(value)
    problems = [
        f"{what}: {_some(names)}"
        for what, names in (
            ("missing weights", missing),
            ("weights of another shape", wrong),
            ("weights no layer uses", list(unused)),
        )
        if names
    ]
    if problems:
        raise ValueError(f"The weights do not fit the model's topology ({'; '.join(problems)}).")


def read_tfjs_weights(manifest: Any, read: Callable[[str], bytes]) -> dict[str, np.ndarray]:
    """A TF.js weights manifest (model.json's `weightsManifest`) decoded: weight name -> float32 array.

    Args:
        manifest: groups of `{"paths": [shard file names], "weights": [{"name", "shape", "dtype"}]}`; each
            group's weights lie one after another in its shards, concatenated.
        read: a shard's bytes by its path (raising FileNotFoundError naming it when it is missing).

    Raises ValueError for quantised or non-float32 weights (before any shard is read) and for shards shorter
    or longer than the manifest says.
    """
    groups = _checked_manifest(manifest)
    weights: dict[str, np.ndarray] = {}
    for group in groups:
        paths = group["paths"]
        data = b"".join(read(path) for path in paths)
        offset = 0
        for spec in group["weights"]:
            shape = tuple(int(n) for n in spec["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            end = offset + count * _FLOAT32_BYTES
            if end > len(data):
                raise ValueError(
                    f"The weight shards {', '.join(paths)} hold {len(data):,} bytes, fewer than the "
                    f"manifest describes (weight {spec['name']} ends at byte {end:,}): a shard is truncated."
                )
            weights[spec["name"]] = np.frombuffer(data, "<f4", count, offset).reshape(shape).copy()
            offset = end
        if offset != len(data):
            raise ValueError(
                f"The weight shards {', '.join(paths)} hold {len(data):,} bytes but the manifest describes "
                f"{offset:,}: they belong to another model.json."
            )
    return weights


def _checked_manifest(manifest: Any) -> list[dict[str, Any]]:
    """The manifest's groups, after refusing what this reader cannot decode exactly."""
    if not isinstance(manifest, list) or not all(
        isinstance(group, dict)
        and isinstance(group.get("paths"), list)
        and isinstance(group.get("weights"), list)
        for group in manifest
    ):
        raise ValueError("model.json's weightsManifest is not a list of {paths, weights} groups.")
    specs = [spec for group in manifest for spec in group["weights"]]
    quantised = [spec["name"] for spec in specs if "quantization" in spec]
    if quantised:
        raise ValueError(
            f"The weights are quantised ({_some(quantised)}); only float32 exports can be imported. Export "
            "the model again from Teachable Machine without quantisation."
        )
    other = sorted({str(spec.get("dtype")) for spec in specs} - {"float32"})
    if other:
        raise ValueError(f"The weights are {', '.join(other)}; only float32 exports can be imported.")
    return manifest


def _call(spec: dict[str, Any], x: Any) -> Any:
    """`x` through the layer or model `spec` describes."""
    kind = spec.get("class_name")
    if kind == "Sequential":
        for child in _children(spec):
            x = _call(child, x)
        return x
    if kind in _FUNCTIONAL:
        return _call_functional(_config(spec), x)
    if kind == "InputLayer":
        return x
    return _layer(str(kind), _config(spec))(x)


def _call_functional(config: dict[str, Any], x: Any) -> Any:
    """`x` through a functional model's graph, its layers inlined; one input and one output."""
    inputs, outputs = _endpoints(config, "input_layers"), _endpoints(config, "output_layers")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"Model {config.get('name')!r} has several inputs or outputs; one of each is supported."
        )
    tensors = {inputs[0]: x}
    for spec in config.get("layers", []):
        name = spec.get("name") or _config(spec).get("name")
        if name in tensors:
            continue
        nodes = spec.get("inbound_nodes") or []
        if len(nodes) != 1:
            raise ValueError(f"Layer {name!r} is used {len(nodes)} times; shared layers are not supported.")
        try:
            args = [tensors[ref[0]] for ref in nodes[0]]
        except KeyError as error:
            raise ValueError(f"Layer {name!r} takes {error} before it is computed.") from error
        tensors[name] = _call(spec, args[0] if len(args) == 1 else args)
    return tensors[outputs[0]]


def _layer(kind: str, config: dict[str, Any]) -> keras.layers.Layer:
    import keras

    try:
        return keras.layers.deserialize(
            {"module": "keras.layers", "class_name": kind, "config": translate_config(kind, config)}
        )
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Layer {config.get('name')!r} ({kind}) cannot be rebuilt in Keras 3: {error}"
        ) from error


def _config(spec: dict[str, Any]) -> dict[str, Any]:
    config = spec.get("config")
    return config if isinstance(config, dict) else {}


def _children(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """A Sequential's layers (a list, or under "layers"), a functional model's, or none."""
    config = spec.get("config")
    layers = config if isinstance(config, list) else (config or {}).get("layers", [])
    return [layer for layer in layers if isinstance(layer, dict)]


def _endpoints(config: dict[str, Any], key: str) -> list[str]:
    """Layer names of `input_layers` / `output_layers`: `[[name, 0, 0], ...]`, or one `[name, 0, 0]`."""
    refs = config.get(key) or []
    if refs and isinstance(refs[0], str):
        refs = [refs]
    return [ref[0] for ref in refs]


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
