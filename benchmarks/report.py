"""The benchmark report: sections of tables, targets (measured against goal) and notes, in Markdown + JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simpsons_core.atomic import write_json, write_text

REPORTS = Path(__file__).resolve().parent / "reports"
SCRATCH = Path(__file__).resolve().parent / "scratch"  # git-ignored


def default_folder(quick: bool) -> Path:
    """Where a report goes unless told: one folder per CPU kind (`reports/amd-epyc-avx2/`), so that a run on
    another machine keeps this one's for comparison; a quick run's figures mean nothing, so it goes to the
    git-ignored scratch folder, never over a committed report."""
    from simpsons_core.cpu import cpu_kind

    return SCRATCH if quick else REPORTS / cpu_kind()


def check_folder(folder: Path, quick: bool) -> None:
    """Refuse to let a quick run write among the committed reports."""
    if quick and folder.resolve().is_relative_to(REPORTS):
        raise ValueError(
            f"A --quick run's figures mean nothing: write it outside {REPORTS} (by default it goes to "
            f"{SCRATCH})."
        )


@dataclass
class Target:
    """One goal of the issue with what was measured. `why` explains a miss from a profile, never a guess.

    Args:
        name: what is measured, in words.
        measured: the measured figure (None when it could not be measured).
        goal: the target value.
        unit: printed after both numbers.
        higher_is_better: True for throughputs and ratios, False for times.
    """

    name: str
    measured: float | None
    goal: float
    unit: str = ""
    higher_is_better: bool = True
    why: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None or math.isnan(self.measured):
            return None
        return self.measured >= self.goal if self.higher_is_better else self.measured < self.goal

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}

    def row(self) -> list[str]:
        sign = ">=" if self.higher_is_better else "<"
        verdict = {True: "met", False: "**missed**", None: "not measured"}[self.met]
        return [
            self.name,
            f"{fmt(self.measured)} {self.unit}".strip(),
            f"{sign} {fmt(self.goal)} {self.unit}",
            verdict,
        ]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""

    def markdown(self) -> str:
        lines = [f"*{self.caption}*", ""] if self.caption else []
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|")
        lines.extend("| " + " | ".join(fmt(cell) for cell in row) + " |" for row in self.rows)
        return "\n".join(lines)


@dataclass
class Section:
    """One numbered part of the report."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "targets": [target.to_dict() for target in self.targets]}

    def markdown(self, number: int) -> str:
        parts = [f"## {number}. {self.title}"]
        if self.error:
            parts.append(f"**Section failed:** {self.error}")
        parts.extend(table.markdown() for table in self.tables)
        if self.targets:
            parts.append(targets_table(self.targets))
        missed = [t for t in self.targets if t.met is False and t.why]
        parts.extend(f"**Why {t.name} is missed:** {t.why}" for t in missed)
        if self.notes:
            parts.append("\n".join(f"- {note}" for note in self.notes))
        for name, text in self.profiles.items():
            parts.append(f"<details><summary>Profile: {name}</summary>\n\n```\n{text}\n```\n</details>")
        parts.append(f"<sub>section time {self.seconds:.0f} s</sub>")
        return "\n\n".join(parts)


def targets_table(targets: list[Target]) -> str:
    return Table(["Target", "Measured", "Goal", "Verdict"], [t.row() for t in targets]).markdown()


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def render(sections: list[Section], meta: dict[str, Any]) -> str:
    """The whole report: header, the summary of every target, then each section."""
    header = [
        "# Simpsons Studio benchmark",
        "",
        f"{meta['date']} · `{meta['command']}` · {meta['machine']} · {meta['versions']}",
        "",
        f"Data: {meta['data']}. Every figure is the median of {meta['repeats']} repeat(s), each in a fresh "
        "process, variants in alternated order; ratios compare figures measured side by side in this run.",
    ]
    all_targets = [t for s in sections for t in s.targets]
    summary = ["## Targets", targets_table(all_targets)] if all_targets else []
    body = [s.markdown(i + 1) for i, s in enumerate(sections)]
    return "\n\n".join(["\n".join(header), *summary, *body]) + "\n"


def write_report(sections: list[Section], meta: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write `latest.md` and `latest.json` atomically into `out_dir`."""
    markdown, data = out_dir / "latest.md", out_dir / "latest.json"
    write_text(markdown, render(sections, meta))
    write_json(data, {"meta": meta, "sections": [section.to_dict() for section in sections]})
    return markdown, data
