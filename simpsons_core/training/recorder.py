"""The Keras callback that keeps a run folder current while `fit` runs (see `simpsons_core.run.folder` for
the files)."""

from __future__ import annotations

import math
import time
from typing import Any

import keras

from simpsons_core.run.folder import RunFolder
from simpsons_core.training.control import PROGRESS_INTERVAL_SECONDS, RunCancelled, RunProgress
from simpsons_core.training.trainer import TrainingDiverged


class RunRecorder(keras.callbacks.Callback):
    """Writes a run's progress into its folder while `fit` runs, and stops training when asked.

    After every epoch it saves best.keras when validation accuracy improved, then appends an epoch line to
    metrics.jsonl and updates status.json, all through the `RunFolder`. Within an epoch it appends a progress
    line and updates status.json (ETA included) at most once every `interval` seconds. After every batch it
    raises `TrainingDiverged` when the loss is NaN or infinite, and checks `stop` and raises `RunCancelled` if
    set.

    Args:
        run: the run folder.
        epochs: the number of epochs planned.
        steps_per_epoch: batches in one epoch.
        stop: a truthy object when the run should stop (`StopRequest`).
        progress: also called with every line written to metrics.jsonl (the CLI's progress bar).
        interval: minimum seconds between two progress lines.
        saved_model: the model best.keras holds, when `fit` trains only part of it (a head on frozen features,
            sharing its layers); by default the model being trained.

    Example:

        recorder = RunRecorder(run, epochs=10, steps_per_epoch=50, stop=StopRequest(run))
        model.fit(dataset, steps_per_epoch=50, epochs=10, validation_data=val, callbacks=[recorder])
    """

    def __init__(
        self,
        run: RunFolder,
        epochs: int,
        steps_per_epoch: int,
        stop: Any = False,
        progress: RunProgress | None = None,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        saved_model: keras.Model | None = None,
    ) -> None:
        super().__init__()
        self.run = run
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.stop = stop
        self.progress = progress
        self.interval = interval
        self.saved_model = saved_model
        self.best_val_accuracy = -math.inf
        self._started = 0.0
        self._epoch_started = 0.0
        self._last_write = -math.inf
        self._epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()
        self._write_status(phase="training")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        loss = logs.get("loss")  # a Python float: Keras hands callbacks that override this method plain logs
        if loss is not None and not math.isfinite(loss):
            raise TrainingDiverged(loss, self._epoch + 1, batch + 1)
        if self.stop:
            raise RunCancelled
        now = time.perf_counter()
        step = batch + 1
        # An epoch's last batch is always written, so the page can say validation is running.
        if now - self._last_write < self.interval and step < self.steps_per_epoch:
            return
        self._last_write = now
        self._emit(
            {
                "type": "progress",
                "epoch": self._epoch + 1,
                "step": step,
                "steps": self.steps_per_epoch,
                "loss": _number(logs.get("loss")),
                "accuracy": _number(logs.get("accuracy")),
                "time": round(now - self._started, 3),
            }
        )
        self._write_status(step=self._epoch * self.steps_per_epoch + step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        line = {
            "type": "epoch",
            "epoch": epoch + 1,
            "loss": _number(logs.get("loss")),
            "accuracy": _number(logs.get("accuracy")),
            "val_loss": _number(logs.get("val_loss")),
            "val_accuracy": _number(logs.get("val_accuracy")),
            "lr": _number(self.model.optimizer.learning_rate),
            "seconds": round(time.perf_counter() - self._epoch_started, 3),
        }
        val_accuracy = line["val_accuracy"]
        if val_accuracy is not None and val_accuracy > self.best_val_accuracy:
            self.best_val_accuracy = val_accuracy
            self.run.save_model(self.saved_model or self.model, best=True)
        self._emit(line)  # after the save: a reader who sees epoch N finds best.keras up to date with it
        self._write_status(step=(epoch + 1) * self.steps_per_epoch)

    def _emit(self, line: dict[str, Any]) -> None:
        self.run.append_metric(line)
        if self.progress:
            self.progress(line)

    def _write_status(self, step: int | None = None, **fields: Any) -> None:
        total = self.epochs * self.steps_per_epoch
        if step is not None:
            elapsed = time.perf_counter() - self._started
            fields.update(
                step=step,
                epoch=min(step // self.steps_per_epoch + 1, self.epochs),
                eta_seconds=round(elapsed / step * (total - step), 1) if step else None,
            )
        self.run.update_status(
            **fields, epochs=self.epochs, total_steps=total, steps_per_epoch=self.steps_per_epoch
        )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
