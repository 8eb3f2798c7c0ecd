"""The benchmark's precision section: what auto chose, figures against the bound of their own precision, a
missed target explained from the measured ratio, and the quick recipe's feature pass timed in a fresh
process."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.context import Context
from benchmarks.harness import Job, Stats, run_job
from benchmarks.precision import choices, explain_miss, fraction_of_bound


def test_what_auto_chose_reads_as_one_precision_or_as_counts_when_it_varied() -> None:
    assert choices([{"precision": "bfloat16"}, {"precision": "bfloat16"}]) == "bfloat16"
    varied = [
        {"precision": "float32"},
        {"error": "boom"},
        {"precision": "bfloat16"},
        {"precision": "float32"},
    ]
    assert choices(varied) == "float32 (2), bfloat16 (1)"
    assert choices([{"error": "boom"}]) == "—"


def test_each_figure_is_a_fraction_of_the_bound_of_the_precision_it_computed_in(tmp_path: Path) -> None:
    ctx = Context(quick=True, repeats=1, workdir=tmp_path)
    ctx.results["matmul_gflops"] = {"float32": 100.0, "bfloat16": 300.0}
    speed = Stats(median=500.0, low=400.0, high=600.0, n=2)
    # Training: bound = GFLOP/s * 1e3 / trained MFLOP per image.
    assert fraction_of_bound(ctx, [{"precision": "bfloat16", "train_mflop": 300.0}], speed) == 0.5
    assert fraction_of_bound(ctx, [{"precision": "float32", "train_mflop": 300.0}], speed) == 1.5
    # A feature pass is bounded by its forward MFLOP.
    assert fraction_of_bound(ctx, [{"precision": "float32", "forward_mflop": 100.0}], speed) == 0.5
    assert fraction_of_bound(ctx, [{"error": "boom"}], speed) is None
    assert (
        fraction_of_bound(Context(True, 1, tmp_path), [{"precision": "float32", "train_mflop": 1.0}], speed)
        is None
    )


def test_a_missed_speedup_is_explained_from_the_measured_ratio_and_the_choice() -> None:
    assert explain_miss("float32", 0.67, bf16=True) == (
        "bfloat16 ran at 0.67x float32 for this network and size, so auto kept float32."
    )
    assert "ran at 1.30x float32" in explain_miss("bfloat16", 1.3, bf16=True)
    assert "without bfloat16 hardware" in explain_miss("float32", 0.17, bf16=False)
    assert "not measured" in explain_miss("float32", None, bf16=True)


@pytest.mark.slow
def test_the_quick_recipes_feature_pass_is_timed_in_a_fresh_process(
    tiny_dataset: Path, workspace: Path
) -> None:
    params = {"recipe_name": "quick", "precision": "float32", "data_dir": str(tiny_dataset)}
    result = run_job(Job("quick/float32", "precision_speed", {**params, "warmup_steps": 1, "steps": 2}))

    assert "error" not in result, result.get("error")
    assert result["precision"] == "float32" and result["reason"] == "float32: asked"
    assert result["images_per_second"] > 0 and result["cpu_ms_per_image"] > 0
    # EfficientNet-Lite0's body: about 0.8 GFLOP at 224 px, so about (96/224)^2 of it at 96 px.
    assert 100 < result["forward_mflop"] < 200
