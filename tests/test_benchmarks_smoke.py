"""`make bench` end to end in quick mode on generated images: the report's structure, not its timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main, parse_args
from benchmarks.harness import Job, alternated, stats
from benchmarks.report import REPORTS, SCRATCH
from simpsons_core.cpu import cpu_kind


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


def test_full_reports_go_to_the_cpu_kinds_folder_and_quick_ones_to_scratch(tmp_path: Path) -> None:
    assert parse_args([]).out == REPORTS / cpu_kind()
    assert parse_args(["--quick"]).out == SCRATCH
    assert parse_args(["--quick", "--out", str(tmp_path)]).out == tmp_path
    with pytest.raises(SystemExit):  # a smoke run's figures never overwrite a committed report
        parse_args(["--quick", "--out", str(REPORTS / cpu_kind())])
    assert parse_args(["--sections", "precision,dashboard"]).sections == ["precision", "dashboard"]


@pytest.mark.slow
def test_quick_run_writes_a_complete_report(
    tiny_dataset: Path, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMPSONS_BENCH_DATA", str(tiny_dataset))
    out = tmp_path / "reports"

    assert main(["--quick", "--only", "hardware,scanning,precision", "--out", str(out)]) == 0

    report = json.loads((out / "latest.json").read_text())
    assert report["meta"]["quick"] is True and report["meta"]["repeats"] == 1
    assert str(tiny_dataset) in report["meta"]["data"]
    hardware, scanning, precision = report["sections"]
    assert [s["key"] for s in report["sections"]] == ["hardware", "scanning", "precision"]
    assert not hardware["error"] and not scanning["error"] and not precision["error"]

    [float32], [bfloat16] = hardware["raw"]["matmul"]["float32"], hardware["raw"]["matmul"]["bfloat16"]
    assert (float32["dtype"], bfloat16["dtype"]) == ("float32", "bfloat16")
    assert float32["gflops"] > 0 and bfloat16["gflops"] > 0 and float32["peak_rss_mb"] > 0
    models = {row[0]: row for row in hardware["tables"][1]["rows"]}
    assert set(models) == {"tutorial", "compact"}
    trained_mflop, float32_bound, bfloat16_bound = models["tutorial"][4:7]
    assert trained_mflop == pytest.approx(307.1, abs=0.1)
    assert float32_bound == pytest.approx(float32["gflops"] * 1e3 / trained_mflop)
    assert bfloat16_bound == pytest.approx(bfloat16["gflops"] * 1e3 / trained_mflop)

    [row] = precision["tables"][0]["rows"]  # quick: the tutorial recipe only
    assert row[:3] == ["tutorial", "tutorial, 64 px", "training"]
    float32_speed, bfloat16_speed, auto_speed, chosen, bf16_ratio, auto_ratio = row[3:9]
    assert min(float32_speed, bfloat16_speed, auto_speed) > 0 and chosen in ("float32", "bfloat16")
    assert bf16_ratio == pytest.approx(bfloat16_speed / float32_speed)
    assert auto_ratio == pytest.approx(auto_speed / float32_speed)
    runs = precision["raw"]["runs"]
    [float32_cost], [bfloat16_cost] = (
        [r["cpu_ms_per_image"] for r in runs[f"tutorial/{p}"]] for p in ("float32", "bfloat16")
    )
    assert row[9] == pytest.approx(float32_cost / bfloat16_cost)  # bf16/float32 by CPU time
    [target] = precision["targets"]
    assert target["name"] == "auto/float32, tutorial (training)" and target["measured"] == auto_ratio

    cold, warm = scanning["targets"]
    assert (cold["goal"], warm["goal"], cold["unit"]) == (20.0, 2.0, "s")
    assert cold["measured"] > 0 and cold["met"] is True and isinstance(warm["met"], bool)
    assert len(scanning["raw"]["cold"]) == 1 and "scan_seconds" in scanning["raw"]["warm"][0]

    markdown = (out / "latest.md").read_text()
    for heading in (
        "## Targets",
        "## 1. Hardware bound",
        "## 2. Scanning 200 images",
        "## 3. Precision per recipe: float32, bfloat16 and auto",
    ):
        assert heading in markdown
    assert "| cold scan of 200 images |" in markdown
