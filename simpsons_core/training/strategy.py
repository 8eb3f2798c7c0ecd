"""Where a run trains: one device, every GPU of this machine, or several machines (`TrainConfig.strategy`).

- "auto": MirroredStrategy when this machine shows more than one GPU, else the default strategy (one device:
  the GPU when there is one, else the CPU). `strategy_kind` is that decision, a pure function of the devices.
- "mirrored": MirroredStrategy over every visible GPU, or every logical CPU device without a GPU (the tests).
- "multiworker": TensorFlow's MultiWorkerMirroredStrategy over the machines of a cluster, given as the
  standard `TF_CONFIG` (`simpsons train --workers host:port,host:port --worker-index i` writes it). Each
  worker decodes and trains on its own share of the training images (`shard`), `TrainConfig.batch_size`
  stays the global batch, the gradients are averaged over all workers at every step, and only the chief
  (`Cluster.is_chief`) writes the run folder; every other worker keeps a log and its final weights in a
  scratch folder of its own (`worker_scratch_dir`). A stop asked of any worker (the chief's cancel file, a
  signal) stops them all (`SharedStop`).

The cluster and the strategy choice need no TensorFlow (the data is found and sharded before TensorFlow is
imported); the rest imports it when called.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from simpsons_core import paths
from simpsons_core.config import MAX_SEED, TrainConfig

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from simpsons_core.data.decoding import DecodedImages
    from simpsons_core.run.folder import RunFolder
    from simpsons_core.training.control import RunProgress

T = TypeVar("T")

MULTIWORKER = "multiworker"
TF_CONFIG = "TF_CONFIG"
WORKERS_DIR = "workers"  # under SIMPSONS_HOME: each non-chief worker's scratch folders
_ADDRESS = re.compile(r"^\[?[A-Za-z0-9.:_-]+\]?:\d{1,5}$")
_CLUSTER_HELP = (
    "give the cluster as --workers host:port,host:port (the chief first) with --worker-index i, or in "
    "TF_CONFIG"
)


def strategy_kind(name: str, gpus: Sequence[str]) -> str:
    """The strategy `name` ("auto", "default", "mirrored", "multiworker") resolves to on a machine whose
    visible GPUs are `gpus`: "auto" mirrors over two GPUs or more, and one GPU is used by the default strategy
    (TensorFlow places every op on it), as is the CPU without a GPU."""
    if name == "auto":
        return "mirrored" if len(gpus) > 1 else "default"
    if name in ("default", "mirrored", MULTIWORKER):
        return name
    raise ValueError(f"Unknown strategy {name!r}: choose auto, default, mirrored or multiworker.")


@dataclass(frozen=True)
class Cluster:
    """The machines of a multi-worker run and this process's place among them (from `TF_CONFIG`).

    Attributes:
        addresses: every worker's host:port, the chief first.
        rank: this worker's position in `addresses`; rank 0 is the chief.
    """

    addresses: tuple[str, ...]
    rank: int

    @property
    def size(self) -> int:
        return len(self.addresses)

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        role = "the chief" if self.is_chief else f"worker {self.rank}"
        return f"{role} of {self.size} workers ({', '.join(self.addresses)})"

    @classmethod
    def from_tf_config(cls, text: str) -> Cluster:
        """The cluster in a `TF_CONFIG` value: {"cluster": {"chief": [...], "worker": [...]}, "task": {"type",
        "index"}}. Without a "chief" job, worker 0 is the chief (TensorFlow's rule). Raises ValueError saying
        what is wrong."""
        try:
            spec = json.loads(text)
            jobs, task = spec["cluster"], spec["task"]
            chief, workers = list(jobs.get("chief", [])), list(jobs.get("worker", []))
            kind, index = task["type"], task["index"]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(
                f"TF_CONFIG is not a cluster specification ({error!r}): {_CLUSTER_HELP}."
            ) from None
        extra = sorted(set(jobs) - {"chief", "worker"})
        if extra:
            raise ValueError(f"TF_CONFIG has jobs {extra}: multiworker training uses only chief and worker.")
        jobs_of = {"chief": chief, "worker": workers}
        if kind not in jobs_of or not isinstance(index, int) or not 0 <= index < len(jobs_of[kind]):
            raise ValueError(f"TF_CONFIG's task {task} is not in its cluster {jobs}.")
        return cls(tuple(chief + workers), index + (len(chief) if kind == "worker" else 0))

    @classmethod
    def from_environment(cls) -> Cluster | None:
        """The cluster in the `TF_CONFIG` environment variable; None when it is unset or empty."""
        text = os.environ.get(TF_CONFIG, "").strip()
        return cls.from_tf_config(text) if text else None


def tf_config(workers: str, index: int | None) -> str:
    """The `TF_CONFIG` value for `--workers host:port,host:port --worker-index i` (worker 0 is the chief)."""
    addresses = [address.strip() for address in workers.split(",") if address.strip()]
    bad = [address for address in addresses if not _ADDRESS.match(address)]
    if not addresses or bad:
        raise ValueError(f"--workers needs host:port addresses separated by commas, not {workers!r}.")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"--workers names an address twice: {workers!r}.")
    if index is None or not 0 <= index < len(addresses):
        raise ValueError(
            f"--worker-index must say which of the {len(addresses)} --workers this machine is "
            f"(0 to {len(addresses) - 1}; 0 is the chief), not {index!r}."
        )
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def cluster_for(name: str) -> Cluster | None:
    """The cluster a run with strategy `name` trains over: None unless "multiworker", which needs one."""
    if name != MULTIWORKER:
        return None
    cluster = Cluster.from_environment()
    if cluster is None:
        raise ValueError(f"The multiworker strategy needs a cluster: {_CLUSTER_HELP}.")
    return cluster


def writes_the_run(name: str) -> bool:
    """Whether this process writes the run folder and holds the workspace's training lock: everyone but a
    multiworker run's non-chief workers. A malformed TF_CONFIG reads as the chief here: the run then fails
    with the reason (`cluster_for`) instead of vanishing."""
    try:
        cluster = cluster_for(name)
    except ValueError:
        return True
    return cluster is None or cluster.is_chief


def shard(items: Sequence[T], cluster: Cluster | None) -> list[T]:
    """This worker's share of `items` (every `size`-th item from its rank): the shares are disjoint, cover
    every item and differ in length by one at most. All of them without a cluster."""
    return list(items if cluster is None else items[cluster.rank :: cluster.size])


def worker_scratch_dir(cluster: Cluster) -> Path:
    """A new folder for a non-chief worker's log, status and final weights, in its own workspace
    (`<SIMPSONS_HOME>/workers/<time>-worker<rank>`): only the chief writes the run folder."""
    base = paths.home() / WORKERS_DIR
    name = f"{datetime.now():%Y%m%d-%H%M%S}-worker{cluster.rank}"
    candidate, n = base / name, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{name}-{n}"
    return candidate


# --- with TensorFlow ----------------------------------------------------------------------------------------


def choose_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy for `TrainConfig.strategy` (see `strategy_kind`). "multiworker" connects
    to the cluster of `TF_CONFIG` and waits there until every worker has joined; it must come before this
    process runs any TensorFlow op ("Collective ops must be configured at program startup")."""
    import tensorflow as tf

    if cluster_for(name):  # before any device is listed: the cluster is configured as TensorFlow starts
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    kind = strategy_kind(name, [gpu.name for gpu in gpus])
    if kind == "default":
        return tf.distribute.get_strategy()
    devices = gpus or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])


def describe(strategy: tf.distribute.Strategy, cluster: Cluster | None) -> dict[str, Any]:
    """What status.json records about where the run trained: `strategy` (e.g. "MirroredStrategy over 2
    device(s)"), `devices` (this machine's, e.g. ["GPU:0"]) and, for a cluster, `workers` (chief first)."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name, devices = "MultiWorkerMirroredStrategy", list(strategy.extended.worker_devices)
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name, devices = "MirroredStrategy", list(strategy.extended.worker_devices)
    else:  # the one device TensorFlow places every op on
        gpus = tf.config.list_logical_devices("GPU")
        name, devices = "default strategy", [(gpus or tf.config.list_logical_devices("CPU"))[0].name]
    record: dict[str, Any] = {
        "strategy": f"{name} over {strategy.num_replicas_in_sync} device(s)",
        "devices": [device.split("device:")[-1] for device in devices],
    }
    if cluster is not None:
        record["strategy"] += f" on {cluster.size} workers"
        record["workers"] = list(cluster.addresses)
    return record


def cluster_datasets(
    strategy: tf.distribute.Strategy,
    cluster: Cluster,
    config: TrainConfig,
    classes: Sequence[str],
    train_images: DecodedImages,
    val_images: DecodedImages,
) -> tuple[tf.data.Dataset, int, tf.data.Dataset]:
    """(training batches, steps in one epoch, validation batches) for this worker of a multi-worker run.

    Training: `pipeline.training_dataset` over this worker's share, batched at the global batch, with
    TensorFlow's auto-sharding off (the share is this worker's already): each step TensorFlow takes
    1/`size` of a batch from every worker, `batch_size` images in all. An epoch is the same number of steps on
    every worker, as the collectives need: the cluster's training images over the global batch. Each worker
    shuffles and augments with its own seed, else equal positions in the workers' batches would get the same
    random warp.

    Validation: every worker passes the whole validation set and TensorFlow shards it by batch ("DATA"), so
    each image is evaluated once in the cluster; Keras sums the metrics' totals and counts over the workers,
    so val_loss and val_accuracy are exactly those of the whole set (checked with an uneven last batch). A
    worker-sharded validation set would not do: Keras counts validation steps from the dataset it is given.

    Raises ValueError on every worker when they were not started with the same settings and classes.
    """
    import tensorflow as tf

    from simpsons_core.data import pipeline

    total = _agree(strategy, cluster, config, classes, len(train_images))
    seed = (config.seed + cluster.rank) % (MAX_SEED + 1)  # the chief keeps the run's seed
    dataset, _ = pipeline.training_dataset(train_images, config.replace(seed=seed))
    policy = tf.data.experimental.AutoShardPolicy
    return (
        _sharded(dataset, policy.OFF),
        math.ceil(total / min(config.batch_size, total)),
        _sharded(pipeline.evaluation_dataset(val_images, config), policy.DATA),
    )


def _sharded(dataset: tf.data.Dataset, policy: Any) -> tf.data.Dataset:
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


def _agree(
    strategy: tf.distribute.Strategy,
    cluster: Cluster,
    config: TrainConfig,
    classes: Sequence[str],
    count: int,
) -> int:
    """The cluster's training images (`count` is this worker's), once every worker is known to train the
    same settings (the data folder may differ) and classes; else ValueError on every worker, not a hang or
    a model trained on a mix."""
    import tensorflow as tf

    settings = json.dumps({**config.to_dict(), "data_dir": None, "classes": list(classes)}, sort_keys=True)
    mine = tf.constant([[zlib.crc32(settings.encode()), count]], dtype=tf.int64)
    rows = strategy.gather(strategy.experimental_distribute_values_from_function(lambda _: mine), axis=0)
    fingerprints, counts = rows.numpy().T
    if len(set(fingerprints.tolist())) > 1:
        raise ValueError(
            "The workers were started with different settings or classes: run the same `simpsons train` "
            "options on every machine, each with a copy of the same dataset."
        )
    if 0 in counts:  # that worker could not train, and the others would wait for it
        raise ValueError(
            "A worker has no training images of its own (fewer images than workers, or every file of its "
            "share was skipped): train on fewer workers."
        )
    replicas_per_worker = strategy.num_replicas_in_sync // cluster.size  # each replica sent its worker's row
    return int(counts.sum()) // replicas_per_worker


class SharedStop:
    """A stop request the whole cluster agrees on: truthy on every worker as soon as `local` (this worker's
    `StopRequest`: the chief's cancel file, a signal) is truthy on any one of them.

    Each check is one all-reduce over the cluster, so every worker checks once per batch at the same point:
    `RunRecorder` on the chief and `worker_callback` elsewhere, both after a loss check that reads the same
    on every worker. A stop that only the chief saw would leave the others waiting in their next step.
    """

    def __init__(self, strategy: tf.distribute.Strategy, local: Any) -> None:
        import tensorflow as tf

        self.local = local

        @tf.function
        def stopping_anywhere(flag: tf.Tensor) -> tf.Tensor:
            flags = strategy.experimental_distribute_values_from_function(lambda _: flag)
            return strategy.reduce("SUM", flags, axis=None) > 0

        self._anywhere = stopping_anywhere

    def __bool__(self) -> bool:
        import tensorflow as tf

        return bool(self._anywhere(tf.constant(1.0 if self.local else 0.0)))


def worker_callback(
    run: RunFolder, stop: SharedStop, progress: RunProgress | None
) -> keras.callbacks.Callback:
    """A non-chief worker's `RunRecorder`: the same checks after each batch in the same order (a loss that is
    no longer finite, then the shared stop), and a log of its own: an epoch line (loss, accuracy, val_loss,
    val_accuracy, seconds) in its scratch folder's metrics.jsonl and to `progress`. No models: the chief
    keeps the checkpoints."""
    import time

    import keras

    from simpsons_core.training.control import RunCancelled
    from simpsons_core.training.trainer import TrainingDiverged

    epoch_start = {"epoch": 0, "time": 0.0}

    def on_epoch_begin(epoch: int, logs: dict[str, Any] | None = None) -> None:
        epoch_start.update(epoch=epoch, time=time.perf_counter())

    def on_train_batch_end(batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(float(loss), epoch_start["epoch"] + 1, batch + 1)
        if stop:
            raise RunCancelled

    def on_epoch_end(epoch: int, logs: dict[str, Any] | None = None) -> None:
        figures = {key: float(value) for key, value in (logs or {}).items()}
        line = {"type": "epoch", "epoch": epoch + 1, **figures}
        line["seconds"] = round(time.perf_counter() - epoch_start["time"], 3)
        run.append_metric(line)
        if progress:
            progress(line)

    return keras.callbacks.LambdaCallback(
        on_epoch_begin=on_epoch_begin, on_train_batch_end=on_train_batch_end, on_epoch_end=on_epoch_end
    )
