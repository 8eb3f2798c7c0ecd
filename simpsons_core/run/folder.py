"""A run folder and its one owner, `RunFolder`: every file's name, and the only code that writes them.

A run lives in `<SIMPSONS_HOME>/runs/<id>/`; the id (`20261124-141530-compact-demo`) sorts by start time.
Every file is written atomically (a complete temp file renamed over the name, or one whole line appended), so
the dashboard, the CLI and other processes can read a run at any moment and reattach to it after a closed tab
or a restart. A temp file left by a killed writer is removed by the next reader once a minute old.

Who writes what:

- `config.json` (the launcher, then the training process): `TrainConfig.to_dict()` plus `dataset` (what the
  run found in its data folder: path, layout, classes, images per class and split, skipped files; in a
  multiworker run the training counts are the chief's share, and `cluster` holds `workers`, `rank` and
  `train_files`, the training files of the whole cluster), or
  `imported_from` for a model trained elsewhere, with `imported_model` (what network it is) and
  `model_input` (a `ModelInput`: how pictures become that model's input) when training settings do not say.
- `labels.json` (the training process): class names in the model's output order.
- `metrics.jsonl` (the training process): one JSON object a line, appended whole: `{"type": "epoch", "epoch",
  "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}` after each epoch and `{"type": "progress",
  "epoch", "step", "steps", "loss", "accuracy", "time"}` at most once a second within an epoch (`time`:
  seconds since training began; `epoch` counts from 1; `step` is the batches done in that epoch).
- `status.json` (the launcher until the child starts, then the training process): `state` (running,
  completed, cancelled, failed), `pid`, `process_started`, `phase`, `phase_done`, `phase_total`, `epoch`,
  `epochs`, `step` and `total_steps` (batches done and planned over the whole run), `steps_per_epoch`,
  `eta_seconds`, `strategy` (e.g. "MirroredStrategy over 2 device(s)"), `devices` (this machine's, e.g.
  ["GPU:0"]), `workers` (a multiworker run's cluster, the chief first), `started_at`, `finished_at`,
  `updated_at`, `error`; after training
  `test_accuracy` and `test_overlap` (the best model on the dataset's test split, and how much of that split
  has near-duplicates in training), and before those `calibration` (`training.calibrate`, read as a
  `Calibration`): `validation_images`, `temperature` (folded into the saved model), `ece_before`, `ece_after`,
  `nll_before`, `nll_after`, `threshold` (the "sure" confidence, or null), `coverage`, `accuracy`, `target`,
  `reached`, `min_answered`, and `problem` ("not calibrated: <why>", the other figures null) instead when it
  could not be done.
- `model.keras`, `best.keras` (the training process): the last weights; the best validation accuracy so far.
  Readers use best.keras, or model.keras when best.keras is damaged (`RunFolder.choose_model`). Calibration
  rewrites the one readers use (`RunFolder.model_path`) with its temperature folded in. A run whose loss
  became NaN saves no model.keras.
- `log.txt`: the training process's stdout and stderr.
- `cancel.request` (whoever cancels, `launcher.cancel_run`): training ends after the current batch.
- `evaluation-<split>.json` (`inference.evaluate`): one evaluation each (`test`, `validation`,
  `folder-<name>`).
- `exports/` (`inference.export`): exported models and their `manifest.json`.

This module never imports TensorFlow (a model is saved through the object handed in).
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from simpsons_core import atomic
from simpsons_core.config import ModelInput, TrainConfig

STATES = ("running", "completed", "cancelled", "failed")
UNEXPECTED_END = "the training process ended unexpectedly"
LAUNCHER_STOPPED = "the launcher stopped before the training process started"

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
LOG_FILE = "log.txt"
CANCEL_FILE = "cancel.request"
EXPORTS_DIR = "exports"
# What a Keras 3 `.keras` file (a zip) must hold to be loadable: its architecture and its weights.
KERAS_CONFIG_ENTRY = "config.json"
KERAS_WEIGHTS_PREFIX = "model.weights."
# config.json's key for a model's own input (`ModelInput.to_dict()`), when training settings do not say it.
MODEL_INPUT_KEY = "model_input"


def now() -> str:
    """The local time with its UTC offset, as status.json records times."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


class RunFolder:
    """The files of one run: their paths, and the one way to write each of them.

    Example:

        run = RunFolder(path)
        run.update_status(phase="training", step=12)
        run.append_metric({"type": "epoch", "epoch": 1, "val_accuracy": 0.8})
        run.save_model(model, best=True)
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- paths ----------------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def labels_path(self) -> Path:
        return self.path / LABELS_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def status_path(self) -> Path:
        return self.path / STATUS_FILE

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def cancel_path(self) -> Path:
        return self.path / CANCEL_FILE

    @property
    def exports_dir(self) -> Path:
        return self.path / EXPORTS_DIR

    def model_file(self, best: bool = False) -> Path:
        return self.path / (BEST_FILE if best else MODEL_FILE)

    @property
    def model_path(self) -> Path | None:
        """The model every consumer uses: the first intact of best.keras and model.keras; else None."""
        return self.choose_model()[0]

    def choose_model(self) -> tuple[Path | None, list[str]]:
        """(the first intact of best.keras and model.keras, or None; a sentence per damaged one). A truncated
        best.keras must not hide an intact model.keras, nor read as "no model saved"."""
        damaged = []
        for path in (self.model_file(best=True), self.model_file()):
            if not path.is_file():
                continue
            problem = keras_file_damage(path)
            if problem is None:
                return path, damaged
            damaged.append(f"{path.name} is damaged ({problem}).")
        return None, damaged

    def evaluation_path(self, split: str) -> Path:
        """`evaluation-<split>.json`, the split made safe as a file name (`folder:x` -> `folder-x`)."""
        return self.path / f"evaluation-{re.sub(r'[^A-Za-z0-9_.-]+', '-', split)}.json"

    # --- writing --------------------------------------------------------------------------------------------
    def write_config(self, config: TrainConfig, **extra: Any) -> None:
        """config.json: the TrainConfig's fields at the top level (what `TrainConfig.from_dict` reads back)
        and what the run learned about its data (`dataset=...`) beside them."""
        atomic.write_json(self.config_path, {**config.to_dict(), **extra})

    def write_labels(self, labels: list[str]) -> None:
        atomic.write_json(self.labels_path, list(labels))

    def read_status(self) -> dict[str, Any]:
        """status.json as written ({} when missing or damaged), without the liveness check of `read_run`."""
        return read_json(self.status_path, {})

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Rewrite status.json with `fields` merged over what it holds (and `updated_at`); returns it."""
        status = {**self.read_status(), **fields, "updated_at": now()}
        atomic.write_json(self.status_path, status)
        return status

    def append_metric(self, line: dict[str, Any]) -> None:
        """One line of metrics.jsonl, appended whole."""
        atomic.append_line(self.metrics_path, json.dumps(line, separators=(",", ":")))

    def save_model(self, model: Any, best: bool = False) -> Path:
        """`model.save` to a temp name beside model.keras (or best.keras), flushed to disk, then renamed."""
        path = self.model_file(best)
        save_model(model, path)
        return path

    def request_cancel(self) -> None:
        atomic.write_text(self.cancel_path, now() + "\n")

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()

    def write_evaluation(self, split: str, data: dict[str, Any]) -> None:
        atomic.write_json(self.evaluation_path(split), data)

    def read_evaluation(self, split: str) -> dict[str, Any] | None:
        """A saved evaluation as written, or None when there is none or it is unreadable."""
        data = read_json(self.evaluation_path(split), None)
        return data if isinstance(data, dict) else None


def keras_file_damage(path: Path) -> str | None:
    """Why the `.keras` file at `path` cannot be loaded, or None when it looks whole. Cheap: it opens the
    zip's central directory (which a truncated file has lost) and looks for the config and weights entries,
    without reading the weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as error:
        return f"not a complete .keras file: {error}"
    if KERAS_CONFIG_ENTRY not in names or not any(name.startswith(KERAS_WEIGHTS_PREFIX) for name in names):
        return f"it lacks the model's {KERAS_CONFIG_ENTRY} or weights"
    return None


def save_model(model: Any, path: Path) -> None:
    """`model.save` to a temp name beside `path`, flushed to disk, then renamed over it. A mixed-precision
    model is saved as its float32 twin, so every saved model loads and predicts in float32 anywhere."""
    from simpsons_core.training.precision import float32_model

    tmp = atomic.temp_path_for(path)
    try:
        float32_model(model).save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Calibration:
    """status.json's `calibration`: temperature scaling after training (`training.calibrate`), fitted and
    judged on the run's leak-free validation images alone.

    Attributes:
        validation_images: how many validation images it used.
        temperature: T, folded into the saved model (which now gives softmax(logits / T)); None when the model
            was not calibrated, and then `problem` says why and no other figure is set.
        ece_before, ece_after: expected calibration error on the validation images, before and after.
        nll_before, nll_after: their mean log loss, before and after.
        threshold: the calibrated confidence at or above which answers were at least `target` right, over at
            least `min_answered` answers; None when no cut qualified (`reached` False).
        coverage: share of the validation images answered at `threshold` (0.0 when not reached).
        accuracy: share of those answers that were right; None when not reached.
        target: the accuracy a "sure" answer must have shown.
        reached: whether a threshold met `target`.
        min_answered: fewest validation answers a threshold may rest on.
        problem: "not calibrated: <why>" when it could not be done; else None.
    """

    validation_images: int = 0
    temperature: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None
    threshold: float | None = None
    coverage: float | None = None
    accuracy: float | None = None
    target: float | None = None
    reached: bool = False
    min_answered: int | None = None
    problem: str | None = None

    @property
    def too_few_images(self) -> bool:
        """Fewer validation images than a threshold needs: the split cannot show any cut meets the target."""
        return self.min_answered is not None and self.validation_images < self.min_answered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Calibration | None:
        """The record as written (unknown keys ignored), or None when it is not one."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})
        except TypeError:
            return None


@dataclass
class RunInfo:
    """Everything a reader can learn about a run folder, however damaged (see `lookup.read_run`).

    Attributes:
        id: the folder name.
        path: the run folder.
        state: "running", "completed", "cancelled" or "failed"; "unknown" when the folder says too little.
        status: status.json as written (plus the liveness verdict applied to `state`).
        config: config.json (TrainConfig fields plus `dataset`); {} when missing or damaged.
        labels: class names in output order; [] when missing or damaged.
        epochs: the epoch lines of metrics.jsonl, in order.
        progress: the progress lines of metrics.jsonl, in order.
        problems: what is wrong with the folder, one sentence each (missing or corrupt files, a dead process).
        config_error: why config.json could not be read ("config.json is missing."), None when it could.
    """

    id: str
    path: Path
    state: str
    status: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    config_error: str | None = None

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.path)

    @property
    def error(self) -> str | None:
        return self.status.get("error")

    @property
    def is_active(self) -> bool:
        return self.state == "running"

    @property
    def best_val_accuracy(self) -> float | None:
        values = [line.get("val_accuracy") for line in self.epochs]
        values = [value for value in values if isinstance(value, (int, float))]
        return max(values) if values else None

    @property
    def model_path(self) -> Path | None:
        return self.folder.model_path

    @property
    def model_note(self) -> str | None:
        """What consumers say when they use model.keras because best.keras is damaged; None otherwise."""
        path, damaged = self.folder.choose_model()
        if path is None or not damaged:
            return None
        return f"{' '.join(damaged)} Using {path.name} (the model after the last epoch) instead."

    def train_config(self) -> TrainConfig | None:
        """The run's TrainConfig, or None when config.json is missing or damaged (`config_problem` says
        how)."""
        return None if self.config_error else config_from_dict(self.config)

    def usable_config(self) -> TrainConfig:
        """The run's TrainConfig for a consumer of its model; raises ValueError "Run X cannot be used:
        config.json is missing." (or damaged, and how) when there is none."""
        config = self.train_config()
        if config is None:
            raise ValueError(f"Run {self.id} cannot be used: {self.config_problem}")
        return config

    @property
    def config_problem(self) -> str | None:
        """Why the run's TrainConfig cannot be had, e.g. "config.json is missing." or "config.json is
        damaged: augment must be ..."; None when it can. Nothing falls back to default settings: a model used
        with settings it was not trained with gives wrong answers or a shape error."""
        if self.config_error:
            return self.config_error
        try:
            parse_config(self.config)
        except ValueError as error:
            return f"{CONFIG_FILE} is damaged: {error}"
        return None

    # --- typed accessors: no caller digs in the raw dicts ---------------------------------------------------
    @property
    def model_name(self) -> str:
        """The network: an imported model's own (`imported_model`), else the training setting's."""
        return str(self.config.get("imported_model") or self.config.get("model", "?"))

    @property
    def epochs_planned(self) -> int | None:
        value = self.status.get("epochs") or self.config.get("epochs")
        return value if isinstance(value, int) else None

    @property
    def validation(self) -> str | None:
        """ "split" (the leak-free split) or "test" (the dataset's test split)."""
        return self.config.get("validation")

    @property
    def dataset(self) -> dict[str, Any]:
        """What the run recorded about its data (path, layout, classes, counts); {} before it got that far."""
        dataset = self.config.get("dataset")
        return dataset if isinstance(dataset, dict) else {}

    @property
    def dataset_path(self) -> Path | None:
        """The folder the run trained on; None for the demo dataset (or an imported model without one)."""
        root = self.dataset.get("path") or self.config.get("data_dir")
        return Path(root) if root else None

    @property
    def model_input(self) -> ModelInput:
        """How pictures become this run's model input: the `model_input` config.json records (an imported
        model's own), else the training settings' (`ModelInput.for_training`). Raises ValueError "Run X cannot
        be used: ..." when config.json is missing or damaged."""
        recorded = self.config.get(MODEL_INPUT_KEY)
        if recorded is None:
            return ModelInput.for_training(self.usable_config())
        try:
            return ModelInput.from_dict(recorded)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"Run {self.id} cannot be used: {CONFIG_FILE} is damaged: {MODEL_INPUT_KEY}: {error}"
            ) from error

    @property
    def imported(self) -> bool:
        return "imported_from" in self.config

    @property
    def started_at(self) -> datetime | None:
        return _parse_time(self.status.get("started_at"))

    @property
    def finished_at(self) -> datetime | None:
        return _parse_time(self.status.get("finished_at"))

    @property
    def test_accuracy(self) -> float | None:
        """The best model's accuracy on the dataset's test split, as recorded after training."""
        value = self.status.get("test_accuracy")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def test_overlap(self) -> str | None:
        """How much of the test split has near-duplicates in training, in words."""
        return self.status.get("test_overlap")

    @property
    def calibration(self) -> Calibration | None:
        """What calibration after training recorded; None for a run without (older, imported, unfinished)."""
        return Calibration.from_dict(self.status.get("calibration"))

    @property
    def threshold(self) -> float | None:
        """The confidence at or above which this run's answers are "sure" and below which "not sure".

        math.inf when no cut reached the target on enough validation images: every answer is "not sure" rather
        than claim an accuracy the data does not show. None when answers get no verdict at all: not
        calibrated, or too few validation images to choose (a threshold resting on a handful is luck).
        """
        calibration = self.calibration
        if calibration is None or calibration.temperature is None or calibration.too_few_images:
            return None
        if calibration.reached and isinstance(calibration.threshold, (int, float)):
            return float(calibration.threshold)
        return math.inf


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def parse_config(data: dict[str, Any]) -> TrainConfig:
    """The TrainConfig inside a config.json (extra keys such as `dataset` ignored; fields it lacks, from a run
    saved before they existed, take their defaults). Raises ValueError saying what is wrong."""
    fields = TrainConfig.__dataclass_fields__
    known = {key: value for key, value in data.items() if key in fields}
    if not known:
        raise ValueError("it records no training settings")
    try:
        return TrainConfig.from_dict(known)
    except TypeError as error:  # a comparison or a constructor given the wrong kind of value
        raise ValueError(str(error)) from error


def config_from_dict(data: dict[str, Any]) -> TrainConfig | None:
    """The TrainConfig inside a config.json, or None when it does not parse (`parse_config` says why)."""
    try:
        return parse_config(data)
    except ValueError:
        return None


def read_json(
    path: Path,
    default: Any,
    problems: list[str] | None = None,
    kind: type = dict,
    required: bool = True,
) -> Any:
    """A JSON file's value, or `default` with the reason added to `problems` when missing or damaged."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if problems is not None and required:
            problems.append(f"{path.name} is missing.")
        return default
    except (OSError, ValueError) as error:
        if problems is not None:
            problems.append(f"{path.name} is damaged ({error}).")
        return default
    if not isinstance(value, kind):
        if problems is not None:
            problems.append(f"{path.name} does not hold a JSON {kind.__name__}.")
        return default
    return value


def read_metrics(path: Path, problems: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(epoch lines, progress lines) of metrics.jsonl; unreadable lines are skipped, and non-finite numbers
    (Python's json reads NaN, Infinity and 1e999) read as missing, both counted in `problems`."""
    epochs: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return epochs, progress
    except OSError as error:
        problems.append(f"{path.name} could not be read ({error}).")
        return epochs, progress
    bad, non_finite = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            bad.append(number)
            continue
        record, changed = finite_only(record)
        if changed:
            non_finite.append(number)
        if record.get("type") == "epoch":
            epochs.append(record)
        elif record.get("type") == "progress":
            progress.append(record)
    if bad:
        problems.append(f"{path.name} has {len(bad)} unreadable line(s) (line {_first_numbers(bad)}).")
    if non_finite:
        problems.append(
            f"{path.name} has NaN or infinite numbers on {len(non_finite)} line(s) (line "
            f"{_first_numbers(non_finite)}); they read as missing."
        )
    return epochs, progress


def finite_only(value: Any) -> tuple[Any, bool]:
    """`value` with every NaN or infinite number inside it (dicts and lists too) replaced by None, and whether
    there was one: a reader shows "-" for a missing figure, never "inf" or "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None, True
    if isinstance(value, dict):
        pairs = [(key, *finite_only(item)) for key, item in value.items()]
        return {key: item for key, item, _ in pairs}, any(changed for *_, changed in pairs)
    if isinstance(value, list):
        items = [finite_only(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False


def _first_numbers(numbers: list[int], shown: int = 5) -> str:
    return ", ".join(map(str, numbers[:shown]))
