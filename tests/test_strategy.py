"""Where a run trains (`training.strategy`): the choice by visible GPUs, the cluster of a multiworker run
(from TF_CONFIG or `--workers`), and each worker's share of the images. No GPU or second machine needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simpsons_core.cli.main import main
from simpsons_core.training.strategy import (
    TF_CONFIG,
    Cluster,
    cluster_for,
    shard,
    strategy_kind,
    tf_config,
    worker_scratch_dir,
    writes_the_run,
)

REPO = Path(__file__).resolve().parent.parent
GPUS = ["/device:GPU:0", "/device:GPU:1"]


@pytest.mark.parametrize(("gpus", "expected"), [([], "default"), (GPUS[:1], "default"), (GPUS, "mirrored")])
def test_auto_mirrors_over_two_gpus_or_more_and_uses_one_device_otherwise(gpus, expected):
    assert strategy_kind("auto", gpus) == expected


@pytest.mark.parametrize("name", ["default", "mirrored", "multiworker"])
def test_a_named_strategy_is_used_whatever_the_gpus(name):
    assert strategy_kind(name, []) == strategy_kind(name, GPUS) == name


def test_an_unknown_strategy_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose auto, default, mirrored or multiworker"):
        strategy_kind("horovod", [])


def test_the_workers_option_makes_a_standard_tf_config_with_worker_zero_as_chief():
    text = tf_config("10.0.0.1:2222, 10.0.0.2:2222", 1)
    assert json.loads(text) == {
        "cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
        "task": {"type": "worker", "index": 1},
    }
    cluster = Cluster.from_tf_config(text)
    assert (cluster.rank, cluster.size, cluster.is_chief) == (1, 2, False)
    assert Cluster.from_tf_config(tf_config("a:1,b:2", 0)).is_chief


@pytest.mark.parametrize(
    ("workers", "index", "message"),
    [
        ("a:1,b", 0, "host:port addresses"),
        ("", 0, "host:port addresses"),
        ("a:1,a:1", 0, "names an address twice"),
        ("a:1,b:2", 2, "0 to 1; 0 is the chief"),
        ("a:1,b:2", None, "--worker-index must say"),
    ],
)
def test_a_wrong_workers_list_or_index_says_what_to_give(workers, index, message):
    with pytest.raises(ValueError, match=message):
        tf_config(workers, index)


def test_a_tf_config_with_a_chief_job_ranks_the_chief_first():
    spec = {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]}, "task": {"type": "worker", "index": 1}}
    cluster = Cluster.from_tf_config(json.dumps(spec))
    assert cluster.addresses == ("c:1", "w:1", "w:2")
    assert cluster.rank == 2
    spec["task"] = {"type": "chief", "index": 0}
    assert Cluster.from_tf_config(json.dumps(spec)).is_chief


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a cluster specification"),
        ('{"cluster": {"worker": ["a:1"]}}', "not a cluster specification"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}', "'ps'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "is not in its cluster"),
    ],
)
def test_a_damaged_tf_config_is_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        Cluster.from_tf_config(text)


def test_only_multiworker_reads_the_cluster_and_it_needs_one(monkeypatch):
    monkeypatch.delenv(TF_CONFIG, raising=False)
    assert cluster_for("auto") is None
    with pytest.raises(ValueError, match="--workers host:port,host:port"):
        cluster_for("multiworker")
    monkeypatch.setenv(TF_CONFIG, tf_config("a:1,b:2", 1))
    assert cluster_for("mirrored") is None
    assert cluster_for("multiworker") == Cluster(("a:1", "b:2"), 1)


def test_only_the_chief_writes_the_run(monkeypatch):
    monkeypatch.setenv(TF_CONFIG, tf_config("a:1,b:2", 1))
    assert not writes_the_run("multiworker")
    assert writes_the_run("auto")  # TF_CONFIG means nothing to the other strategies
    monkeypatch.setenv(TF_CONFIG, tf_config("a:1,b:2", 0))
    assert writes_the_run("multiworker")
    monkeypatch.setenv(TF_CONFIG, "{broken")
    assert writes_the_run("multiworker")  # the run then fails, saying why, in its own folder


@pytest.mark.parametrize("count", [0, 1, 7, 10])
def test_the_workers_shares_are_disjoint_cover_everything_and_differ_by_one_at_most(count):
    items = list(range(count))
    shares = [shard(items, Cluster(("a:1", "b:1", "c:1"), rank)) for rank in range(3)]
    assert sorted(item for share in shares for item in share) == items
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert shard(items, None) == items


def test_a_worker_scratch_folder_is_in_its_own_workspace_never_in_runs(workspace):
    folder = worker_scratch_dir(Cluster(("a:1", "b:1"), 1))
    assert folder.parent == workspace / "workers"
    assert folder.name.endswith("-worker1")
    folder.mkdir(parents=True)
    assert worker_scratch_dir(Cluster(("a:1", "b:1"), 1)) != folder


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--worker-index", "1"], "--worker-index needs --workers"),
        (["--workers", "a:1,b:2", "--worker-index", "1", "--strategy", "mirrored"], "give --strategy"),
        (["--workers", "a:1,b:2", "--worker-index", "5"], "0 to 1; 0 is the chief"),
        (["--workers", "localhost:1,localhost:2", "--worker-index", "1", "--detach"], "foreground"),
    ],
)
def test_train_refuses_a_wrong_cluster_before_training(
    argv, message, workspace, tiny_dataset, capsys, monkeypatch
):
    monkeypatch.delenv(TF_CONFIG, raising=False)
    assert main(["train", "--data", str(tiny_dataset), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_describe_names_the_default_strategy_and_its_device():
    import tensorflow as tf

    from simpsons_core.training.strategy import describe

    record = describe(tf.distribute.get_strategy(), None)
    assert record["strategy"] == "default strategy over 1 device(s)"
    assert record["devices"] == ["GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"]


def requirement_lines(name: str) -> list[str]:
    lines = (REPO / name).read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_the_gpu_requirements_pin_the_same_packages_with_tensorflow_for_cuda_instead_of_the_cpu_wheel():
    cpu, gpu = requirement_lines("requirements.txt"), requirement_lines("requirements-gpu.txt")
    [version] = {line.split("==")[1].split(";")[0].strip() for line in cpu if line.startswith("tensorflow")}
    assert [line for line in gpu if line.startswith("tensorflow")] == [f"tensorflow[and-cuda]=={version}"]
    assert [line for line in gpu if not line.startswith("tensorflow")] == [
        line for line in cpu if not line.startswith("tensorflow")
    ]


def test_the_gpu_check_fails_saying_why_on_a_machine_without_a_gpu(tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: scripts/gpu-check.sh would train on it")
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}  # where its workspace would go
    check = subprocess.run(
        ["bash", str(REPO / "scripts/gpu-check.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode != 0
    assert "No GPU visible to TensorFlow" in check.stderr
    assert "TensorFlow 2." in check.stdout
    assert list(tmp_path.iterdir()) == []  # nothing trained, no workspace made
