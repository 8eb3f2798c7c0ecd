"""Importing the tutorial's own artifact, `simpsons_weights.h5`, as a run that Evaluate and Predict can use.

People who ran the tutorial hold Keras 2 HDF5 weights of its network (`classifier.save_weights(...)`). Keras 3
reads only its own `.weights.h5` layout, so this reads the Keras 2 layout directly with h5py: the root
attribute `layer_names` lists every layer; each layer's group has an attribute `weight_names` (like
`conv2d_1/kernel:0`) naming its datasets. A whole model saved by `model.save("x.h5")` has the same layout
under `model_weights`. Keras 2 stored kernels channels-last, exactly as Keras 3 does, so the arrays are used
unchanged.

The tutorial trained on 64x64 images scaled by 1/255; the input size is read back from the first Dense layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simpsons_core.config import recipe

# (kind, kernel rank) of the tutorial's four layers with weights, in order.
_TUTORIAL_WEIGHTED = (("conv", 4), ("conv", 4), ("dense", 2), ("dense", 2))


@dataclass(frozen=True)
class Keras2Layer:
    name: str
    weights: list[np.ndarray]


def read_keras2_weights(path: str | Path) -> list[Keras2Layer]:
    """Every layer of a Keras 2 HDF5 weights (or whole-model) file, with its arrays, in the file's order."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not an HDF5 file (.h5) that Keras 2 could have written.") from error
    with handle:
        group = handle.get("model_weights", handle)
        if "layer_names" not in group.attrs:
            raise ValueError(
                f"{path} is HDF5 but not in the Keras 2 weights layout (no 'layer_names' attribute). "
                "A Keras 3 model is best used as a .keras file."
            )
        layers = []
        for name in map(_text, group.attrs["layer_names"]):
            layer = group[name]
            names = [_text(w) for w in layer.attrs.get("weight_names", [])]
            layers.append(Keras2Layer(name, [np.asarray(layer[w]) for w in names]))
    return layers


def tutorial_weights(layers: list[Keras2Layer], num_labels: int) -> tuple[int, list[np.ndarray]]:
    """(input image size, weights in Keras 3 order) of the tutorial network, after checking every shape."""
    weighted = [layer for layer in layers if layer.weights]
    kinds = [(w.name, w.weights[0].ndim) for w in weighted]
    if len(weighted) != len(_TUTORIAL_WEIGHTED) or any(
        rank != expected for (_, rank), (_, expected) in zip(kinds, _TUTORIAL_WEIGHTED, strict=True)
    ):
        found = ", ".join(f"{name} (rank-{rank} kernel)" for name, rank in kinds) or "none"
        raise ValueError(
            "This is not the tutorial's network (2 convolutions then 2 dense layers); the file's layers "
            f"with weights are: {found}."
        )
    dense_in, outputs = weighted[2].weights[0].shape[0], weighted[3].weights[0].shape[1]
    if outputs != num_labels:
        raise ValueError(f"The file's network has {outputs} outputs but {num_labels} labels were given.")
    side = round(float(np.sqrt(dense_in / weighted[1].weights[0].shape[-1])))
    image_size = (side * 2 + 4) * 2 + 4  # undo: conv 5x5 valid (-4), pool 2 (/2), conv (-4), pool (/2)
    return image_size, [array for layer in weighted for array in layer.weights]


def parse_labels(text: str) -> list[str]:
    labels = [label.strip() for label in text.split(",") if label.strip()]
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"Give at least 2 distinct comma-separated labels in output order, not {text!r}.")
    return labels


def import_weights(h5_path: str | Path, labels: list[str], name: str | None = None) -> str:
    """Make a completed run of the tutorial recipe from a Keras 2 `simpsons_weights.h5`; returns the run id.

    Args:
        h5_path: the tutorial's weights file (or a whole model saved by Keras 2 as .h5).
        labels: class names in the model's output order; the tutorial's were the alphabetical folder names,
            e.g. bart_simpson, homer_simpson, lisa_simpson, marge_simpson.
        name: a readable name for the run id (default: the file's name).
    """
    from simpsons_core.run.launcher import create_completed_run
    from simpsons_core.training.models import build_model

    image_size, weights = tutorial_weights(read_keras2_weights(h5_path), len(labels))
    model = build_model("tutorial", image_size, len(labels))
    expected = [w.shape for w in model.get_weights()]
    if [w.shape for w in weights] != expected:
        raise ValueError(
            f"The file's weight shapes {[w.shape for w in weights]} do not fit the tutorial network."
        )
    model.set_weights(weights)
    config = recipe("tutorial").replace(image_size=image_size)
    source = {"imported_from": str(Path(h5_path).resolve())}
    return create_completed_run(model, labels, config, name or Path(h5_path).stem, extra=source)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
