"""`make bench` end to end in quick mode on generated images: the report's structure, not its timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.harness import Job, alternated, stats


def test_tutorial_flops_match_the_known_figures() -> None:
    """The issue measured about 108 MFLOP forward and 307 MFLOP trained per 64 px image for the tutorial."""
    from benchmarks.flops import forward_flops, training_flops
    from simpsons_core.training.models import build_model

    model = build_model("tutorial", 64, 4)
    assert forward_flops(model) / 1e6 == pytest.approx(108.1, abs=0.1)
    assert training_flops(model) / 1e6 == pytest.approx(307.1, abs=0.1)


def test_repeats_alternate_order_and_summarise_successes() -> None:
    jobs = [Job("a", "scan"), Job("b", "scan"), Job("c", "scan")]
    assert [job.key for job in alternated(jobs, 0)] == ["a", "b", "c"]
    assert [job.key for job in alternated(jobs, 1)] == ["c", "b", "a"]
    summary = stats([{"x": 3.0}, {"error": "boom"}, {"x": 1.0}, {"x": 2.0}], "x")
    assert (summary.median, summary.low, summary.high, summary.n) == (2.0, 1.0, 3.0, 3)
    assert stats([{"error": "boom"}], "x") is None


@pytest.mark.slow
def test_quick_run_writes_a_complete_report(
    tiny_dataset: Path, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMPSONS_BENCH_DATA", str(tiny_dataset))
    out = tmp_path / "reports"

    assert main(["--quick", "--only", "hardware,scanning", "--out", str(out)]) == 0

    report = json.loads((out / "latest.json").read_text())
    assert report["meta"]["quick"] is True and report["meta"]["repeats"] == 1
    assert str(tiny_dataset) in report["meta"]["data"]
    hardware, scanning = report["sections"]
    assert (hardware["key"], scanning["key"]) == ("hardware", "scanning")
    assert not hardware["error"] and not scanning["error"]

    [matmul] = hardware["raw"]["matmul"]
    assert matmul["gflops"] > 0 and matmul["peak_rss_mb"] > 0
    models = {row[0]: row for row in hardware["tables"][1]["rows"]}
    assert set(models) == {"tutorial", "compact"}
    trained_mflop, best_images_per_second = models["tutorial"][4], models["tutorial"][5]
    assert trained_mflop == pytest.approx(307.1, abs=0.1)
    assert best_images_per_second == pytest.approx(matmul["gflops"] * 1e3 / trained_mflop)

    cold, warm = scanning["targets"]
    assert (cold["goal"], warm["goal"], cold["unit"]) == (20.0, 2.0, "s")
    assert cold["measured"] > 0 and cold["met"] is True and isinstance(warm["met"], bool)
    assert len(scanning["raw"]["cold"]) == 1 and "scan_seconds" in scanning["raw"]["warm"][0]

    markdown = (out / "latest.md").read_text()
    for heading in ("## Targets", "## 1. Hardware bound", "## 2. Scanning 200 images"):
        assert heading in markdown
    assert "| cold scan of 200 images |" in markdown
