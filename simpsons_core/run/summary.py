"""Runs in words and table rows: the honest-accuracy line, the calibration line, progress with an ETA (and
each phase around training as it happens), duration, a run in one line, the history table, and how long a new
run should take, measured on earlier ones. The CLI, the run history and the page headers all say a
run's accuracy through `honest_accuracy`, and its calibration through `calibration_line`, so they never
disagree.

Test-split accuracy is never shown bare: when the dataset's test split shares near-duplicates with its
training split, the figure carries "may overlap training: N of M near-duplicates", as it measures memory too.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simpsons_core.run.folder import Calibration, RunInfo

if TYPE_CHECKING:
    from simpsons_core.config import TrainConfig

UNKNOWN_OVERLAP = "may overlap training"
NO_VERDICT = "Answers carry no sure / not sure verdict"
VALIDATION_NAMES = {"split": "leak-free split", "test": "test split"}
# status.json `phase` values in words. The data phases ("finding images", "loading training images", ...) and
# "features" report (done, total) as they go; the phases named in `PHASES_WITHOUT_COUNTS` do not, and may
# find the previous phase's counts still in status.json, so those are never shown with them.
PHASE_WORDS = {
    "starting": "Starting",
    "choosing the precision": "Choosing float32 or bfloat16 (timed once per CPU kind, model and size)",
    "building the model": "Building the model",
    "features": "Computing the frozen network's features",
    "saving": "Saving the model",
    "calibrating": "Calibrating the confidences on the validation images",
    "scoring the test split": "Scoring the test split",
}
AFTER_TRAINING = frozenset({"saving", "calibrating", "scoring the test split"})
PHASES_WITHOUT_COUNTS = AFTER_TRAINING | {"starting", "building the model"}
FIRST_STEP = "Training starts (the first batch compiles the model)..."
_OVERLAP_COUNT = re.compile(r"(\d+) of (\d+) near-duplicates")


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
    """(share done in [0, 1], one line saying where the run is): the phase before and after training, and
    epoch, step and ETA while training. Before the first step and after the last the step counts say nothing
    (the first batch compiles for seconds; validation, saving, calibration and test scoring follow the last),
    so those moments are named instead."""
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
        words = PHASE_WORDS.get(phase, phase.capitalize())
        done, total = status.get("phase_done") or 0, status.get("phase_total") or 0
        if phase in PHASES_WITHOUT_COUNTS or not total:
            return (1.0 if phase in AFTER_TRAINING else 0.0), f"{words}..."
        return done / total, f"{words} {done}/{total}..."
    step, total = status.get("step") or 0, status.get("total_steps") or 0
    if not step:
        return 0.0, FIRST_STEP
    share = min(1.0, step / total) if total else 0.0
    per_epoch = status.get("steps_per_epoch") or 0
    finished = len(info.epochs)
    if per_epoch and step >= (finished + 1) * per_epoch:  # every batch of an epoch done, its line not yet
        return share, f"Epoch {finished + 1}/{epochs}: measuring validation accuracy..."
    if total and step >= total:
        return share, f"{PHASE_WORDS['saving']}..."
    epoch = step // per_epoch + 1 if per_epoch else status.get("epoch") or 1
    in_epoch = step - (epoch - 1) * per_epoch
    eta = status.get("eta_seconds")
    text = f"Epoch {epoch}/{epochs}, step {in_epoch}/{per_epoch or '?'}"
    text += f", about {format_seconds(eta)} left" if eta is not None else ""
    return share, text


def history_rows(infos: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """One row per run, newest first: the run, its state and duration first (what a glance at a narrow table
    needs), then started, model, epochs, validation source, best validation accuracy and test-split accuracy
    with its overlap in short. `infos` are the runs as `list_runs()` gives them (oldest first)."""
    rows = []
    for info in reversed(infos):
        figures = honest_accuracy(info)
        rows.append(
            {
                "run": info.id,
                "state": info.state,
                "duration": format_seconds(duration_seconds(info)),
                "started": started_text(info) if info.started_at else "",
                "model": info.model_name,
                "epochs": f"{len(info.epochs)}/{info.epochs_planned or '?'}",
                "validation": VALIDATION_NAMES.get(info.validation or "", "?"),
                "best val accuracy": _percent(figures.validation),
                "test accuracy": cell_for_test_split(figures),
            }
        )
    return rows


def cell_for_test_split(figures: HonestAccuracy) -> str:
    """The test figure for a table cell, never bare but short: "97.5% (63 of 200 near-duplicates)", or the
    whole overlap note when it carries no count; "-" when not measured."""
    if figures.test is None:
        return "-"
    counted = _OVERLAP_COUNT.search(figures.overlap)
    return f"{figures.test:.1%} ({counted.group(0) if counted else figures.overlap})"


@dataclass(frozen=True)
class TimeEstimate:
    """How long a run should take, from the measured speed of comparable earlier runs.

    Attributes:
        seconds: the whole run, start to finish.
        runs: how many earlier runs it was measured on.
        model: their model.
        image_size: their image size.
    """

    seconds: float
    runs: int
    model: str
    image_size: int

    def line(self) -> str:
        """e.g. "about 5 min, from 2 earlier runs of lite0 at 96 px"."""
        plural = "s" if self.runs != 1 else ""
        return (
            f"about {rough_duration(self.seconds)}, from {self.runs} earlier run{plural} of {self.model} at "
            f"{self.image_size} px"
        )


def estimate_seconds(
    config: TrainConfig, folder_images: int, infos: Sequence[RunInfo]
) -> TimeEstimate | None:
    """How long `config` should take on a dataset with `folder_images` training-folder images, from the
    completed runs among `infos` with the same model and image size; None without one.

    Each comparable run gives its seconds per training image per epoch (metrics.jsonl `seconds` over
    config.json's `dataset.train_images`) and per training image for everything outside the epochs (loading,
    building, calibration, scoring: they grow with the images too); the median of each is used, so one run
    measured on a busy machine does not decide.
    """
    per_epoch, outside = [], []
    for info in infos:
        comparable = (info.model_name, info.config.get("image_size")) == (config.model, config.image_size)
        if info.state != "completed" or not comparable:
            continue
        images = (info.config.get("dataset") or {}).get("train_images")
        seconds = [line["seconds"] for line in info.epochs if isinstance(line.get("seconds"), (int, float))]
        if not isinstance(images, int) or images <= 0 or not seconds:
            continue
        per_epoch.append(sum(seconds) / len(seconds) / images)
        took = duration_seconds(info)
        outside.append(max(0.0, took - sum(seconds)) / images if took is not None else 0.0)
    if not per_epoch:
        return None
    kept = 1 - config.validation_fraction if config.validation == "split" else 1.0
    training_images = folder_images * kept
    seconds = training_images * (statistics.median(per_epoch) * config.epochs + statistics.median(outside))
    return TimeEstimate(seconds, len(per_epoch), config.model, config.image_size)


def rough_duration(seconds: float) -> str:
    """A duration as precise as an estimate deserves: "40 s", "5 min", "1 h 25 min"."""
    if seconds < 55:
        return f"{max(10, round(seconds, -1)):.0f} s"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(5 * round(minutes / 5), 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def _percent(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "-"
