"""Precision: the setting, how "auto" decides (hardware, the cached probe, a run too short to probe), the
probe itself on a tiny model, float32 softmax outputs under mixed precision, and a real bfloat16 run whose
saved models load and predict in float32."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from simpsons_core import paths
from simpsons_core.config import RECIPES, TrainConfig
from simpsons_core.training.precision import (
    CACHE_FILE,
    MIN_SPEEDUP,
    PROBE_MIN_STEPS,
    Device,
    Probe,
    cache_key,
    cached_probe,
    compute_policy,
    float32_model,
    measure,
    resolve_precision,
    store_probe,
)

AMX = Device("intel-xeon-amx-bf16", bf16=True)
AVX2 = Device("amd-epyc-avx2", bf16=False)
AUTO = TrainConfig(model="tutorial", image_size=64, batch_size=32)


def probe(speedup: float) -> Probe:
    return Probe(
        float32_seconds=0.15,
        bfloat16_seconds=round(0.15 / speedup, 5),
        speedup=speedup,
        rounds=4,
        seconds=6.0,
        measured_at="2026-12-01T04:00:00+00:00",
    )


def test_precision_is_auto_unless_set_and_must_be_a_known_one() -> None:
    assert TrainConfig().precision == "auto"
    assert {config.precision for config in RECIPES.values()} == {"auto"}
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16, not 'float16'"):
        TrainConfig(precision="float16")
    config = TrainConfig(precision="bfloat16")
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_an_asked_precision_is_used_and_bfloat16_without_hardware_warns(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for device in (AMX, AVX2):
        resolved = resolve_precision(AUTO.replace(precision="float32"), device=device)
        assert (resolved.precision, resolved.reason) == ("float32", "float32: asked")
    assert capsys.readouterr().err == ""

    assert resolve_precision(AUTO.replace(precision="bfloat16"), device=AMX).precision == "bfloat16"
    assert capsys.readouterr().err == ""
    resolved = resolve_precision(AUTO.replace(precision="bfloat16"), device=AVX2)
    assert (resolved.precision, resolved.reason) == ("bfloat16", "bfloat16: asked")
    assert "amd-epyc-avx2 has no bfloat16 hardware" in capsys.readouterr().err


def test_auto_stays_float32_without_bfloat16_hardware_whatever_the_cache_says(workspace: Path) -> None:
    store_probe(cache_key(AVX2.kind, AUTO), probe(3.0))
    resolved = resolve_precision(AUTO, device=AVX2)
    assert resolved.precision == "float32"
    assert resolved.reason == "float32: amd-epyc-avx2 has no bfloat16 hardware"


def test_auto_takes_the_cached_probes_choice_for_that_device_model_size_and_batch(workspace: Path) -> None:
    store_probe(cache_key(AMX.kind, AUTO), probe(1.66))
    store_probe(cache_key(AMX.kind, AUTO.replace(image_size=32)), probe(0.8))
    store_probe(cache_key(AMX.kind, AUTO.replace(batch_size=8)), probe(MIN_SPEEDUP - 0.01))
    assert json.loads((paths.cache_dir() / CACHE_FILE).read_text())  # a real file, three entries
    assert len(json.loads((paths.cache_dir() / CACHE_FILE).read_text())) == 3

    faster = resolve_precision(AUTO, device=AMX, training_steps=10)  # cached: used however short the run
    assert faster.precision == "bfloat16" and faster.probe == probe(1.66)
    assert faster.reason.startswith("bfloat16: bfloat16 ran 1.66x the speed of float32 (cached probe")
    assert "tutorial at 64 px, batch 32" in faster.reason
    assert resolve_precision(AUTO.replace(image_size=32), device=AMX).precision == "float32"
    assert resolve_precision(AUTO.replace(batch_size=8), device=AMX).precision == "float32"

    record = faster.record()
    assert record["precision"] == "bfloat16" and record["device"] == AMX.kind
    assert record["cpu"] and record["cpu_kind"] and record["probe"]["speedup"] == 1.66


def test_auto_does_not_probe_a_run_too_short_to_repay_it(workspace: Path) -> None:
    started = time.perf_counter()
    resolved = resolve_precision(AUTO, device=AMX, training_steps=PROBE_MIN_STEPS - 1)
    assert time.perf_counter() - started < 1.0
    assert resolved.precision == "float32" and "too few to repay a probe" in resolved.reason
    assert cached_probe(cache_key(AMX.kind, AUTO)) is None


def test_auto_stays_float32_when_several_workers_must_compute_alike(workspace: Path) -> None:
    store_probe(cache_key(AMX.kind, AUTO), probe(2.0))
    resolved = resolve_precision(AUTO.replace(strategy="multiworker"), device=AMX)
    assert resolved.precision == "float32" and "several workers" in resolved.reason
    asked = AUTO.replace(strategy="multiworker", precision="bfloat16")
    assert resolve_precision(asked, device=AMX).precision == "bfloat16"


def test_a_damaged_cache_reads_as_empty(workspace: Path) -> None:
    (paths.cache_dir() / CACHE_FILE).write_text("{not json")
    assert cached_probe(cache_key(AMX.kind, AUTO)) is None
    store_probe(cache_key(AMX.kind, AUTO), probe(2.0))
    assert cached_probe(cache_key(AMX.kind, AUTO)) == probe(2.0)


@pytest.mark.slow
def test_a_real_probe_of_a_tiny_model_times_both_precisions_and_leaves_the_policy(workspace: Path) -> None:
    import keras

    result = measure("tutorial", 16, 4, seconds=0.5)
    assert result.rounds >= 3 and result.seconds < 30
    assert result.float32_seconds > 0 and result.bfloat16_seconds > 0
    assert result.speedup == pytest.approx(result.float32_seconds / result.bfloat16_seconds, rel=0.01)
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tutorial", "compact", "lite0", "lite0-frozen"])
def test_every_model_keeps_its_softmax_in_float32_under_mixed_precision(
    model: str, module_workspace: Path
) -> None:
    import keras

    from simpsons_core.training.models import build_model

    with compute_policy("bfloat16"):
        net = build_model(model, 32, 3)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert net.layers[1].dtype_policy.name == "mixed_bfloat16"
    assert net.layers[-1].dtype_policy.name == "float32"
    output = net(np.zeros((2, 32, 32, 3), dtype="float32"), training=False)
    assert output.dtype == "float32"

    twin = float32_model(net)
    assert {layer.compute_dtype for layer in twin.layers} == {"float32"}
    assert float32_model(twin) is twin
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    mixed, exact = np.asarray(net(images, training=False)), np.asarray(twin(images, training=False))
    np.testing.assert_allclose(mixed, exact, atol=0.05)  # bfloat16 keeps about 3 significant digits


@pytest.mark.slow
def test_a_bfloat16_run_records_its_precision_and_saves_float32_models(
    workspace: Path, tiny_dataset: Path
) -> None:
    import keras

    from simpsons_core.training.trainer import train_in_foreground

    config = TrainConfig(
        data_dir=str(tiny_dataset),
        model="compact",
        image_size=32,
        epochs=1,
        batch_size=16,
        precision="bfloat16",
    )
    info = train_in_foreground(config, workspace / "runs" / "bf16")
    assert info.state == "completed", info.error
    record = info.status["precision"]
    assert (record["precision"], record["reason"]) == ("bfloat16", "bfloat16: asked")
    assert record["cpu"] and record["cpu_kind"]
    assert keras.mixed_precision.global_policy().name == "float32"  # reset for in-process callers

    images = np.random.default_rng(1).random((5, 32, 32, 3), dtype=np.float32)
    for name in ("model.keras", "best.keras"):
        model = keras.saving.load_model(info.path / name)
        assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
        probabilities = np.asarray(model.predict_on_batch(images))
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
