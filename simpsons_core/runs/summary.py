"""Runs in words and table rows: progress with an ETA, duration, and the history table the dashboard shows.

Test-split accuracy is never shown bare: when the dataset's test split shares near-duplicates with its
training split, the figure carries "may overlap training: N of M near-duplicates", as it measures memory too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from simpsons_core.inference.evaluate import Evaluation
from simpsons_core.runs.folder import RunInfo


def duration_seconds(info: RunInfo) -> float | None:
    """Wall time from start to finish (to now while running); None when the times are not recorded."""
    try:
        begun = datetime.fromisoformat(info.status["started_at"])
        ended_text = info.status.get("finished_at")
        ended = datetime.fromisoformat(ended_text) if ended_text else datetime.now().astimezone()
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (ended - begun).total_seconds())


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


def progress_text(info: RunInfo) -> tuple[float, str]:
    """(share done in [0, 1], one line saying where the run is): epoch, step and ETA while training."""
    status = info.status
    epochs = status.get("epochs") or info.config.get("epochs") or 0
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
    test-split accuracy (from a saved evaluation) with its overlap note, duration and state.
    `infos` are the runs as `runs.list_runs()` gives them (oldest first). The overlap note is worked out once
    per dataset (the scan behind it is cached per file).
    """
    notes: dict[Path, str | None] = {}

    def note_for(info: RunInfo) -> str | None:
        folder = info.config.get("dataset", {}).get("path") or info.config.get("data_dir")
        if not folder or not Path(folder).is_dir():
            return None
        folder = Path(folder)
        if folder not in notes:
            notes[folder] = _test_overlap_note(folder)
        return notes[folder]

    rows = []
    for info in reversed(infos):
        config = info.config
        validation = config.get("validation")
        best = info.best_val_accuracy
        evaluation = _saved_test_evaluation(info)
        test_accuracy = evaluation.accuracy if evaluation else (best if validation == "test" else None)
        leak = (evaluation.leak_note if evaluation else None) or (
            note_for(info) if test_accuracy is not None else None
        )
        rows.append(
            {
                "run": info.id,
                "started": (info.status.get("started_at") or "")[:16].replace("T", " "),
                "model": config.get("model", "?"),
                "epochs": f"{len(info.epochs)}/{info.status.get('epochs') or config.get('epochs', '?')}",
                "validation": {"split": "leak-free split", "test": "test split"}.get(validation, "?"),
                "best val accuracy": _percent(best),
                "test accuracy": _percent(test_accuracy) + (f" ({leak})" if leak and test_accuracy else ""),
                "duration": format_seconds(duration_seconds(info)),
                "state": info.state,
            }
        )
    return rows


def _saved_test_evaluation(info: RunInfo) -> Evaluation | None:
    from simpsons_core.inference.evaluate import read_evaluation

    if info.model_path is None:
        return None
    try:
        return read_evaluation(info.path, "test")
    except (ValueError, OSError):
        return None


def _percent(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "-"


def _test_overlap_note(folder: Path) -> str | None:
    from simpsons_core.data.folders import detect_layout
    from simpsons_core.data.splits import overlap_with_training

    try:
        return overlap_with_training(detect_layout(folder)).phrase
    except (ValueError, OSError):
        return None
