"""Importing a Teachable Machine image model as a run that predict, evaluate, explain and export can use.

Teachable Machine exports an image project two ways, each read here from a zip (junk such as `__MACOSX/` and a
top folder allowed) or a folder:
- TensorFlow.js: `model.json` (a tfjs-layers topology and weights manifest), the weight shards it names
  (`weights.bin`) and `metadata.json` (`labels`, versions).
- Keras: `keras_model.h5` (a whole Keras 2 model) and `labels.txt` (lines like `0 Class 1`). Keras 3 cannot
  load it (`Unrecognized keyword arguments passed to DepthwiseConv2D: {'groups': 1}`), so its config and
  weights are read with h5py and rebuilt like the TF.js topology (`tfjs_layers`), `groups` dropped.

Both are a MobileNet base (image projects: MobileNetV2, its alpha and size in the base's name; "tiny image"
projects: a small MobileNet on 96x96 greyscale), global pooling and Dense layers ending in a softmax. The run
records the model's own input (`ModelInput`): Teachable Machine's centre square, resized, pixel values to
[-1, 1] (x / 127.5 - 1, as its Keras snippet does), greyscale for a one-channel model.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from simpsons_core.config import ModelInput, TrainConfig
from simpsons_core.inference.tfjs_layers import (
    base_model_name,
    build_model,
    load_weights,
    read_keras2_h5,
    read_tfjs_weights,
)

if TYPE_CHECKING:
    import keras

MODEL_JSON = "model.json"
METADATA_JSON = "metadata.json"
LABELS_TXT = "labels.txt"
H5_SUFFIX = ".h5"
RECIPE = "teachable-machine"
# A Teachable Machine model is a few MB (MobileNetV2 at alpha 1: 9 MB); a bigger file is not one.
MAX_FILE_BYTES = 200_000_000
# Teachable Machine's preprocessing: pixel values 0-255 to [-1, 1].
TM_SCALE, TM_OFFSET = 1.0 / 127.5, -1.0
_JUNK = re.compile(r"(^|/)(__MACOSX/|\._|\.DS_Store$)")
_NUMBERED_LABEL = re.compile(r"^(\d+)\s+(.*)$")
EXPORT_HELP = (
    "Teachable Machine's TensorFlow.js export (model.json, weights.bin, metadata.json) or its Keras export "
    "(keras_model.h5, labels.txt), as a zip or a folder"
)

Files = dict[str, Callable[[], bytes]]


@dataclass(frozen=True)
class TeachableMachineModel:
    """An export rebuilt in Keras 3.

    Attributes:
        model: a flat Keras 3 functional model with the export's weights, ending in a softmax.
        labels: class names in output order.
        model_input: how a picture becomes the model's input (Teachable Machine's preprocessing).
        details: what the run records about the export: `format` ("tfjs" or "keras"), `network` (the base
            model's name, e.g. "mobilenetv2_0.35_224"), and the versions the export states.
    """

    model: keras.Model
    labels: list[str]
    model_input: ModelInput
    details: dict[str, Any]


def import_teachable_machine(
    path: str | Path, name: str | None = None, labels: str | Path | None = None
) -> str:
    """Make a completed run from a Teachable Machine export (`EXPORT_HELP`); returns the run id.

    Args:
        path: the export: a zip, a folder, or a `.h5` file with `labels.txt` beside it.
        name: a readable name for the run id (default: the export's file or folder name).
        labels: a labels file (`labels.txt` lines, or one name a line) to use instead of the export's own.
    """
    from simpsons_core.run.folder import MODEL_INPUT_KEY
    from simpsons_core.run.launcher import create_completed_run

    path = Path(path).expanduser()
    imported = read_export(path, labels)
    # What consumers read of a TrainConfig here: the batch size (the image size repeats model_input's).
    config = TrainConfig(recipe=RECIPE, image_size=imported.model_input.size)
    extra = {
        "imported_from": str(path.resolve()),
        "imported_model": f"{RECIPE} {imported.details['network']}",
        MODEL_INPUT_KEY: imported.model_input.to_dict(),
        "teachable_machine": imported.details,
    }
    return create_completed_run(imported.model, imported.labels, config, name or path.stem, extra=extra)


def read_export(path: str | Path, labels: str | Path | None = None) -> TeachableMachineModel:
    """The export at `path` rebuilt (see `import_teachable_machine`). Raises FileNotFoundError for a missing
    path, model file, weight shard or labels file, ValueError for anything else that is not a float32
    Teachable Machine image model, each naming the file and the fix."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    with _export_files(path) as files:
        label_text = _read_labels_file(Path(labels).expanduser()) if labels else None
        model_json = _only(files, path, lambda name: PurePosixPath(name).name == MODEL_JSON)
        if model_json is not None:
            model, names, details = _read_tfjs(files, model_json, label_text)
        else:
            h5 = _only(files, path, lambda name: name.lower().endswith(H5_SUFFIX))
            if h5 is None:
                raise ValueError(f"{path} holds no {MODEL_JSON} and no .h5 file: give {EXPORT_HELP}.")
            model, names, details = _read_keras(files, h5, label_text)
    return TeachableMachineModel(model, _checked_labels(names, model), _model_input(model), details)


def parse_labels_txt(text: str) -> list[str]:
    """`labels.txt` as Teachable Machine writes it ("0 Class 1" a line), or one name a line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    numbered = [_NUMBERED_LABEL.match(line) for line in lines]
    if lines and all(numbered):
        if [int(m.group(1)) for m in numbered] != list(range(len(lines))):
            raise ValueError(f"{LABELS_TXT} numbers its lines out of order; they must run 0, 1, 2...")
        return [m.group(2).strip() for m in numbered]
    return lines


def _read_tfjs(files: Files, model_json: str, label_text: str | None) -> tuple[keras.Model, list[str], dict]:
    folder = PurePosixPath(model_json).parent
    try:
        spec = json.loads(files[model_json]())
        topology, manifest = spec["modelTopology"], spec["weightsManifest"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{model_json} is not a TensorFlow.js layers model ({error}).") from error

    def shard(name: str) -> bytes:
        member = (folder / name).as_posix()
        if member not in files:
            raise FileNotFoundError(
                f"The weight shard {member} that {model_json} names is missing from the export."
            )
        return files[member]()

    weights = read_tfjs_weights(manifest, shard)  # refuses quantised or non-float32 weights before reading
    model = build_model(topology)
    load_weights(model, weights)
    metadata = _metadata(files, (folder / METADATA_JSON).as_posix(), label_text is None)
    names = parse_labels_txt(label_text) if label_text is not None else metadata.get("labels")
    details = {
        "format": "tfjs",
        "network": base_model_name(topology),
        **{key: metadata[key] for key in ("tmVersion", "tfjsVersion", "packageVersion") if key in metadata},
    }
    return model, names, details


def _read_keras(files: Files, h5: str, label_text: str | None) -> tuple[keras.Model, list[str], dict]:
    if label_text is None:
        member = (PurePosixPath(h5).parent / LABELS_TXT).as_posix()
        if member not in files:
            raise FileNotFoundError(
                f"{LABELS_TXT} is missing beside {h5}: it holds the class names; give it too (--labels FILE)."
            )
        label_text = files[member]().decode("utf-8")
    topology, weights, version = read_keras2_h5(files[h5](), h5)
    model = build_model(topology)
    load_weights(model, weights)
    details = {"format": "keras", "network": base_model_name(topology), "keras_version": version}
    return model, parse_labels_txt(label_text), details


def _metadata(files: Files, member: str, required: bool) -> dict[str, Any]:
    if member not in files:
        if required:
            raise FileNotFoundError(
                f"{member} is missing from the export: it holds the class names. Download the model "
                f"again, or give a {LABELS_TXT} (--labels FILE)."
            )
        return {}
    try:
        metadata = json.loads(files[member]())
    except ValueError as error:
        raise ValueError(f"{member} is not valid JSON ({error}).") from error
    return metadata if isinstance(metadata, dict) else {}


def _checked_labels(labels: Any, model: keras.Model) -> list[str]:
    outputs = model.output_shape[-1]
    if not isinstance(labels, list) or not all(isinstance(name, str) and name.strip() for name in labels):
        raise ValueError(f"The export's labels are not a list of class names: {labels!r}.")
    if len(set(labels)) != len(labels):
        raise ValueError(f"The export's labels repeat a name: {labels}.")
    if len(labels) != outputs:
        raise ValueError(
            f"The model has {outputs} outputs but the export names {len(labels)} classes: {labels}."
        )
    return list(labels)


def _model_input(model: keras.Model) -> ModelInput:
    """Teachable Machine's preprocessing for this model; refuses one that is no softmax image classifier."""
    import keras

    _, height, width, channels = model.input_shape
    if height != width or channels not in (1, 3):
        raise ValueError(f"The model takes {model.input_shape}; a square RGB or greyscale image is expected.")
    if getattr(model.layers[-1], "activation", None) is not keras.activations.softmax:
        raise ValueError("The model does not end in a softmax, so its outputs are not probabilities.")
    colour = "greyscale" if channels == 1 else "rgb"
    return ModelInput(int(height), colour=colour, fit="centre-crop", scale=TM_SCALE, offset=TM_OFFSET)


@contextmanager
def _export_files(path: Path) -> Iterator[Files]:
    """The export's files (junk left out) by their path inside it, each read when asked for."""
    if path.is_dir():
        found = {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*")) if p.is_file()}
        yield {name: _file_reader(p) for name, p in found.items() if not _JUNK.search(name)}
    elif path.suffix.lower() == H5_SUFFIX:
        beside = path.with_name(LABELS_TXT)
        yield {
            path.name: _file_reader(path),
            **({LABELS_TXT: _file_reader(beside)} if beside.is_file() else {}),
        }
    else:
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise ValueError(f"{path} is not a zip, a folder or a .h5 file: give {EXPORT_HELP}.") from error
        with archive:
            members = [
                info for info in archive.infolist() if not info.is_dir() and not _JUNK.search(info.filename)
            ]
            yield {info.filename: _member_reader(archive, info) for info in members}


def _only(files: Files, path: Path, wanted: Callable[[str], bool]) -> str | None:
    """The one file `wanted` picks; None when there is none, ValueError when there are several models."""
    found = [name for name in files if wanted(name)]
    if len(found) > 1:
        raise ValueError(f"{path} holds several models ({', '.join(found)}); give one.")
    return found[0] if found else None


def _read_labels_file(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"The labels file {path} does not exist.")
    return path.read_text(encoding="utf-8")


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(
                f"{path} is larger than any Teachable Machine model ({MAX_FILE_BYTES // 10**6} MB)."
            )
        return path.read_bytes()

    return read


def _member_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        with archive.open(info) as member:
            data = member.read(MAX_FILE_BYTES + 1)  # the header's size may lie: read no more than the limit
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"{info.filename} is larger than any Teachable Machine model.")
        return data

    return read
