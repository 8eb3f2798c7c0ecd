"""Which precision a run computes in: float32, or bfloat16 mixed precision (bfloat16 arithmetic, float32
weights, a float32 softmax) where that is faster.

Why a probe rather than a rule: bfloat16 is fast only with hardware for it (AMX-BF16 or AVX512-BF16 on a CPU,
compute capability 8.0 or more on an NVIDIA GPU; emulated it ran at 0.17x on an AVX2 EPYC), and even then it
depends on the network and the image size (on an AMX Xeon: the tutorial net at 64 px 1.65x faster, compact at
128 px 2x, compact at 64 px 0.67x). So `precision="auto"` times a few training steps of the run's own model,
image size and batch in both precisions, alternated, and picks bfloat16 only at `MIN_SPEEDUP` or more. The
result is cached per (CPU kind or GPU, TensorFlow version, model, image size, batch) in
`SIMPSONS_HOME/cache/precision.json`, so each machine kind probes once.

Saved models are always float32 (`float32_model`): a mixed model's file would carry its bfloat16 policy in
every layer, and load and compute in bfloat16 everywhere, slowly on most machines.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simpsons_core import atomic, cpu, paths
from simpsons_core.config import TrainConfig
from simpsons_core.run.folder import read_json

if TYPE_CHECKING:
    import keras

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # TrainConfig.precision -> Keras policy
MIN_SPEEDUP = 1.15  # bfloat16 must be this much faster: below it, timing noise could decide
PROBE_SECONDS = 3.0  # timed steps, both precisions together, after one step each that compiles
MIN_ROUNDS, MAX_ROUNDS = 3, 8  # alternated timings of each precision
# A speedup this far from MIN_SPEEDUP (either way) needs no more rounds once PROBE_SECONDS are spent: a lite0
# step at 128 px takes seconds, and there bfloat16 ran at a quarter of float32's speed.
CLEAR_MARGIN = 2.0
MIN_TIMING_SECONDS = 0.2  # each timing runs enough steps to last this long, so the clock's noise is small
# A run of fewer training steps than this is left in float32 rather than probed: bfloat16 could not win back
# the probe's seconds. (A cached result is used whatever the length.)
PROBE_MIN_STEPS = 300
GPU_BF16_CAPABILITY = (8, 0)
CACHE_FILE = "precision.json"


@dataclass(frozen=True)
class Probe:
    """A timed comparison of the two precisions on one model, image size and batch.

    Attributes:
        float32_seconds, bfloat16_seconds: seconds per step, the fastest of the alternated timings (the
            least disturbed by other work on the machine): a training step, or a forward pass for a model
            that trains only a head on frozen features, whose cost is the feature pass.
        speedup: float32_seconds / bfloat16_seconds.
        rounds: alternated timings of each.
        seconds: what the whole probe took, building and compiling included.
        measured_at: when, as ISO 8601 text.
    """

    float32_seconds: float
    bfloat16_seconds: float
    speedup: float
    rounds: int
    seconds: float
    measured_at: str

    @property
    def precision(self) -> str:
        return "bfloat16" if self.speedup >= MIN_SPEEDUP else "float32"


@dataclass(frozen=True)
class Resolved:
    """The precision a run uses and why (status.json's `precision`, via `record`).

    Attributes:
        precision: "float32" or "bfloat16".
        reason: one sentence: "asked", the missing hardware, or the probe's figures.
        device: the CPU kind (`cpu.cpu_kind`), or "gpu-<name>" when a GPU trains.
        probe: the probe's figures when one decided (measured now or cached).
    """

    precision: str
    reason: str
    device: str
    probe: Probe | None = None

    def record(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "reason": self.reason,
            "device": self.device,
            "cpu": cpu.cpu_name(),
            "cpu_kind": cpu.cpu_kind(),
            "probe": asdict(self.probe) if self.probe else None,
        }


@dataclass(frozen=True)
class Device:
    """What trains a run.

    Attributes:
        kind: the CPU's kind (`cpu.cpu_kind`, e.g. "amd-epyc-avx2"), or "gpu-<name>" ("gpu-nvidia-h200").
        bf16: whether it has bfloat16 hardware: AMX-BF16 or AVX512-BF16, or a GPU of compute capability 8.0+.
    """

    kind: str
    bf16: bool


def training_device() -> Device:
    """The first GPU TensorFlow sees, else this CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = tuple(details.get("compute_capability") or (0, 0))
        name = cpu.slug(details.get("device_name", "unknown"))
        return Device(f"gpu-{name}", capability >= GPU_BF16_CAPABILITY)
    return Device(cpu.cpu_kind(), cpu.bf16_hardware())


def resolve_precision(
    config: TrainConfig,
    num_classes: int = 4,
    training_steps: int | None = None,
    device: Device | None = None,
) -> Resolved:
    """The precision `config` trains in on `device` (default: `training_device()`): `config.precision` when
    "float32" or "bfloat16" (warning on stderr when bfloat16 has no hardware there); for "auto", float32
    without bfloat16 hardware or under the multiworker strategy, else the cached or freshly measured probe's
    choice (`measure`), or float32 for a run of fewer than `PROBE_MIN_STEPS` `training_steps` (None:
    unknown, so probe).
    """
    device = device or training_device()
    if config.precision != "auto":
        if config.precision == "bfloat16" and not device.bf16:
            print(
                f"Warning: bfloat16 was asked for, but {device.kind} has no bfloat16 hardware (AMX-BF16, "
                "AVX512-BF16, or a GPU of compute capability 8.0+): it is emulated, and slower than float32.",
                file=sys.stderr,
                flush=True,
            )
        return Resolved(config.precision, f"{config.precision}: asked", device.kind)
    if not device.bf16:
        return Resolved("float32", f"float32: {device.kind} has no bfloat16 hardware", device.kind)
    if config.strategy == "multiworker":  # each worker would probe alone, and might decide otherwise
        reason = "float32: auto does not probe when several workers train together (ask for bfloat16)"
        return Resolved("float32", reason, device.kind)
    key = cache_key(device.kind, config)
    probe = cached_probe(key)
    how = "cached probe"
    if probe is None:
        if training_steps is not None and training_steps < PROBE_MIN_STEPS:
            reason = (
                f"float32: {training_steps} training steps are too few to repay a probe of bfloat16 (it runs "
                f"from {PROBE_MIN_STEPS})"
            )
            return Resolved("float32", reason, device.kind)
        probe = measure(config.model, config.image_size, config.batch_size, num_classes)
        store_probe(key, probe)
        how = "probe"
    reason = (
        f"{probe.precision}: bfloat16 ran {probe.speedup:.2f}x the speed of float32 ({how}: "
        f"{probe.float32_seconds * 1e3:.0f} vs {probe.bfloat16_seconds * 1e3:.0f} ms a step of "
        f"{config.model} at {config.image_size} px, batch {config.batch_size}; bfloat16 from {MIN_SPEEDUP}x)"
    )
    return Resolved(probe.precision, reason, device.kind, probe)


@contextlib.contextmanager
def compute_policy(precision: str) -> Iterator[None]:
    """Layers built inside compute in `precision` ("float32" or "bfloat16", mixed); the global Keras policy is
    restored on the way out (a layer keeps the policy it was built with)."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def float32_model(model: keras.Model) -> keras.Model:
    """`model` itself when every layer computes in float32; else a float32 twin: the same architecture, every
    layer's policy float32, the same weights (a mixed model keeps its weights in float32, so they copy
    exactly), compiled alike with the optimizer's state. What a run saves (`run.folder.save_model`), so its
    files load and predict in float32 anywhere."""
    import keras

    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def as_float32(layer: keras.layers.Layer) -> keras.layers.Layer:
        return type(layer).from_config({**layer.get_config(), "dtype": "float32"})

    twin = keras.models.clone_model(model, clone_function=as_float32)
    twin.set_weights(model.get_weights())
    if model.compiled:  # what `fit` could go on from, as a float32 run's file keeps it
        twin.compile_from_config(model.get_compile_config())
        if model.optimizer.built:
            for mine, theirs in zip(twin.optimizer.variables, model.optimizer.variables, strict=True):
                mine.assign(theirs)
    return twin


def cache_key(device_kind: str, config: TrainConfig) -> str:
    """The probe cache's key: what decides bfloat16's speed (the device, TensorFlow's kernels, the model, the
    image size and the batch)."""
    import tensorflow as tf

    return f"{device_kind} tf{tf.__version__} {config.model} {config.image_size}px batch{config.batch_size}"


def cached_probe(key: str) -> Probe | None:
    entry = _read_cache().get(key)
    try:
        return Probe(**entry) if isinstance(entry, dict) else None
    except TypeError:  # written by another version of this module
        return None


def store_probe(key: str, probe: Probe) -> None:
    """Add `probe` to the cache file (atomically; concurrent writers may drop each other's new entry, which
    only costs a probe again)."""
    atomic.write_json(_cache_path(), {**_read_cache(), key: asdict(probe)})


def measure(
    model_name: str, image_size: int, batch_size: int, num_classes: int = 4, seconds: float = PROBE_SECONDS
) -> Probe:
    """Time `model_name` at `image_size` on one random batch of `batch_size`, float32 and mixed bfloat16
    alternated, after one step each that compiles, for `seconds` (`_settled`). A step is what training
    repeats: a training step, or for a model that trains only its head on frozen features, the eager forward
    pass that computes those features (`frozen_features.precompute`). The global Keras policy is left as it
    was."""
    import tensorflow as tf

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((batch_size, image_size, image_size, 3), dtype=np.float32))
    labels = tf.constant(rng.integers(0, num_classes, batch_size, dtype=np.int32))
    steps = {
        precision: _step(model_name, image_size, num_classes, precision, images, labels)
        for precision in POLICIES
    }
    for step in steps.values():
        step()  # compiles
    timings: dict[str, list[float]] = {precision: [] for precision in POLICIES}
    repeats = dict.fromkeys(POLICIES, 1)
    timed_from = time.perf_counter()
    for round_ in range(MAX_ROUNDS):
        for precision in POLICIES if round_ % 2 == 0 else reversed(POLICIES):
            timings[precision].append(_timed(steps[precision], repeats[precision]))
        if _settled(timings, time.perf_counter() - timed_from, seconds):
            break
        repeats = {name: max(1, math.ceil(MIN_TIMING_SECONDS / times[0])) for name, times in timings.items()}
    float32, bfloat16 = (min(timings[precision]) for precision in POLICIES)
    return Probe(
        float32_seconds=round(float32, 5),
        bfloat16_seconds=round(bfloat16, 5),
        speedup=round(float32 / bfloat16, 3),
        rounds=len(timings["float32"]),
        seconds=round(time.perf_counter() - started, 2),
        measured_at=datetime.now().astimezone().isoformat(timespec="seconds"),
    )


def _step(
    model_name: str, image_size: int, num_classes: int, precision: str, images: Any, labels: Any
) -> Callable[[], Any]:
    """A callable that runs one step of the model built in `precision` and waits for its result."""
    from simpsons_core.training import frozen_features, models

    with compute_policy(precision):
        model = models.build_model(model_name, image_size, num_classes)
        models.compile_model(model, 1e-3)
    if frozen_features.trains_only_its_head(model):
        return lambda: np.asarray(model(images, training=False))
    return lambda: model.train_on_batch(images, labels)


def _settled(timings: dict[str, list[float]], elapsed: float, seconds: float) -> bool:
    """Whether the probe can stop: `seconds` spent timing, over `MIN_ROUNDS` rounds or fewer when the
    speedup so far is far from `MIN_SPEEDUP` (by `CLEAR_MARGIN` either way)."""
    float32, bfloat16 = (min(timings[precision]) for precision in POLICIES)
    clear = not MIN_SPEEDUP / CLEAR_MARGIN < float32 / bfloat16 < MIN_SPEEDUP * CLEAR_MARGIN
    return elapsed >= seconds and (clear or len(timings["float32"]) >= MIN_ROUNDS)


def _timed(step: Any, repeats: int) -> float:
    """Seconds per call of `step`, over `repeats` calls."""
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats


def _cache_path() -> Path:
    return paths.cache_dir() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    data = read_json(_cache_path(), {})
    return data if isinstance(data, dict) else {}
