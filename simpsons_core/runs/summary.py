"""Runs in words and table rows: the honest-accuracy line, the calibration line, progress with an ETA,
duration, a run in one line, and the history table. The CLI, the run history and the page headers all say a
run's accuracy through `honest_accuracy`, and its calibration through `calibration_line`, so they never
disagree.

Test-split accuracy is never shown bare: when the dataset's test split shares near-duplicates with its
training split, the figure carries "may overlap training: N of M near-duplicates", as it measures memory too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simpsons_core.runs.folder import Calibration, RunInfo

UNKNOWN_OVERLAP = "may overlap training"
NO_VERDICT = "Answers carry no sure / not sure verdict"
VALIDATION_NAMES = {"split": "leak-free split", "test": "test split"}


@dataclass(frozen=True)
class HonestAccuracy:
    """A run's two accuracy figures side by side: validation (leak-free, or on the test split) and the test
    split's, which always carries how much of that split overlaps training.

    Attributes:
        validation: the best validation accuracy; None before an epoch finished.
        on_test_split: whether the run validated on the dataset's test split (then `test` is the same figure).
        test: the best model's accuracy on the test split; None when not measured.
        overlap: the test split's overlap with training, in words.
    """

    validation: float | None
    on_test_split: bool
    test: float | None
    overlap: str

    def line(self, label: str = "best val_accuracy") -> str:
        """e.g. "best val_accuracy 0.955 (leak-free split); test split 0.975 (may overlap training: 200 of 200
        near-duplicates)"."""
        if self.validation is None:
            return "no epoch finished"
        if self.on_test_split:
            return f"{label} {self.validation:.3f} (on the test split, {self.overlap})"
        text = f"{label} {self.validation:.3f} (leak-free split)"
        if self.test is not None:
            text += f"; test split {self.test:.3f} ({self.overlap})"
        return text

    def test_cell(self) -> str:
        """The test figure as a table cell: "97.5% (may overlap training: ...)", or "-"."""
        if self.test is None:
            return "-"
        return f"{self.test:.1%} ({self.overlap})"


def honest_accuracy(info: RunInfo) -> HonestAccuracy:
    """The run's figures as training recorded them (status.json), or, for a run evaluated on its test split
    later (an imported model), as that evaluation saved them."""
    on_test_split = info.validation == "test"
    test, overlap = info.test_accuracy, info.test_overlap
    if test is None and on_test_split:
        test = info.best_val_accuracy
    if test is None or overlap is None:
        saved = info.folder.read_evaluation("test") or {}
        if test is None and isinstance(saved.get("accuracy"), (int, float)):
            test = float(saved["accuracy"])
        overlap = overlap or saved.get("leak_note")
    return HonestAccuracy(info.best_val_accuracy, on_test_split, test, overlap or UNKNOWN_OVERLAP)


def verdict_sentence(calibration: Calibration) -> str:
    """When the run's answers are "sure", in one sentence (the Predict page's caption, the end of
    `calibration_line`): the threshold with what it delivered on the validation images, or why there is
    none."""
    if calibration.temperature is None:
        return f"{NO_VERDICT} ({calibration.problem or 'not calibrated'})."
    if calibration.too_few_images:
        return (
            f"{NO_VERDICT}: choosing its threshold needs at least {calibration.min_answered} validation "
            f"images, and this run had {calibration.validation_images}."
        )
    if not calibration.reached or calibration.threshold is None:
        return (
            f'Every answer is "not sure": no confidence level was {calibration.target or 0:.0%} right over '
            f"at least {calibration.min_answered} of this run's {calibration.validation_images} validation "
            "images."
        )
    return (
        f"Answers at >= {calibration.threshold:.1%} confidence were {calibration.accuracy or 0:.1%} right on "
        f"this run's validation images, {calibration.coverage or 0:.0%} of them; below it the answer is "
        '"not sure".'
    )


def calibration_line(calibration: Calibration | None) -> str | None:
    """e.g. "calibration: T 1.42, ECE 0.081 -> 0.024. Answers at >= 83.4% confidence were 97.5% right on this
    run's validation images, 88% of them; ..." (`runs show`, the Train page, the training log); None for a run
    that recorded no calibration (trained before it existed, imported, or unfinished)."""
    if calibration is None:
        return None
    if calibration.temperature is None:
        return f"calibration: {calibration.problem or 'not calibrated'}"
    return (
        f"calibration: T {calibration.temperature:.2f}, ECE {calibration.ece_before or 0:.3f} -> "
        f"{calibration.ece_after or 0:.3f}. {verdict_sentence(calibration)}"
    )


def duration_seconds(info: RunInfo) -> float | None:
    """Wall time from start to finish (to now while running); None when the times are not recorded."""
    begun = info.started_at
    if begun is None:
        return None
    ended = info.finished_at or datetime.now().astimezone()
    try:
        return max(0.0, (ended - begun).total_seconds())
    except TypeError:  # one time with a UTC offset, one without
        return None


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def started_text(info: RunInfo) -> str:
    """The start as "2026-11-24 14:15", or "?" when not recorded."""
    begun = info.started_at
    return begun.strftime("%Y-%m-%d %H:%M") if begun else "?"


def run_label(info: RunInfo) -> str:
    """A run in one line: its start, model, epochs and best validation accuracy (or its state)."""
    if info.state != "completed":
        return f"{info.id} ({info.state})"
    epochs = info.epochs_planned
    parts = [started_text(info), info.model_name, f"{epochs or '?'} epoch{'' if epochs == 1 else 's'}"]
    if info.best_val_accuracy is not None:
        parts.append(f"val {info.best_val_accuracy:.1%}")
    return f"{info.id}: " + ", ".join(parts)


def progress_text(info: RunInfo) -> tuple[float, str]:
    """(share done in [0, 1], one line saying where the run is): epoch, step and ETA while training."""
    status = info.status
    epochs = info.epochs_planned or 0
    best = info.best_val_accuracy
    best_text = f"best validation accuracy {best:.1%}" if best is not None else "no epoch finished"
    if info.state != "running":
        share = len(info.epochs) / epochs if epochs else 0.0
        took = format_seconds(duration_seconds(info))
        return min(1.0, share), f"{len(info.epochs)} of {epochs} epochs in {took}; {best_text}."
    phase = status.get("phase") or "starting"
    if phase != "training":
        done, total = status.get("phase_done") or 0, status.get("phase_total") or 0
        counted = f" {done}/{total}" if total else ""
        return (done / total if total else 0.0), f"{phase.capitalize()}{counted}..."
    step, total = status.get("step") or 0, status.get("total_steps") or 0
    per_epoch = status.get("steps_per_epoch") or 0
    in_epoch = step - (status.get("epoch", 1) - 1) * per_epoch if per_epoch else step
    eta = status.get("eta_seconds")
    text = f"Epoch {status.get('epoch', 1)}/{epochs}, step {in_epoch}/{per_epoch or '?'}"
    text += f", about {format_seconds(eta)} left" if eta is not None else ""
    return (min(1.0, step / total) if total else 0.0), text


def history_rows(infos: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """One row per run, newest first: started, model, epochs, validation source, best validation accuracy,
    test-split accuracy with its overlap note, duration and state. `infos` are the runs as `list_runs()` gives
    them (oldest first)."""
    rows = []
    for info in reversed(infos):
        figures = honest_accuracy(info)
        rows.append(
            {
                "run": info.id,
                "started": started_text(info) if info.started_at else "",
                "model": info.model_name,
                "epochs": f"{len(info.epochs)}/{info.epochs_planned or '?'}",
                "validation": VALIDATION_NAMES.get(info.validation or "", "?"),
                "best val accuracy": _percent(figures.validation),
                "test accuracy": figures.test_cell(),
                "duration": format_seconds(duration_seconds(info)),
                "state": info.state,
            }
        )
    return rows


def _percent(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "-"
