"""What every section gets: mode, repeats, a scratch folder, the data and earlier sections' results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.datasets import BenchData, prepare_data


@dataclass
class Context:
    """Shared state of one benchmark run.

    Args:
        quick: a smoke run: tiny data, one repeat, short trainings.
        repeats: repeats of every side-by-side comparison.
        workdir: scratch folder for generated data, workspaces and runs (deleted afterwards).
        log: prints progress lines.
    """

    quick: bool
    repeats: int
    workdir: Path
    log: Callable[[str], None] = print
    results: dict[str, Any] = field(default_factory=dict)
    _data: BenchData | None = None

    @property
    def data(self) -> BenchData:
        """The benchmark images, prepared on first use (re-encoding takes a few seconds)."""
        if self._data is None:
            self.log("preparing data ...")
            self._data = prepare_data(self.workdir / "data", self.quick)
            self.log(f"data: {self._data.origin}")
        return self._data

    def gflops(self, precision: str = "float32") -> float | None:
        """Matrix-multiply GFLOP/s in `precision` ("float32" or "bfloat16"), once the hardware bound is
        measured (`hardware.measure_bounds`)."""
        return self.results.get("matmul_gflops", {}).get(precision)

    def bound(self, model: str, precision: str = "float32") -> float | None:
        """The hardware bound in images/s for `model` (at 64 px) trained in `precision` (from the hardware
        section), when it ran."""
        return self.results.get("bound_images_per_second", {}).get(precision, {}).get(model)
