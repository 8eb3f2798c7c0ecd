#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: show the devices TensorFlow sees, train the demo data for 2 epochs, and
# show where the run trained. Exits non-zero when TensorFlow sees no GPU or the run did not train on one.
# Needs the GPU build of TensorFlow: `make run GPU=1` (or `make test GPU=1`) makes .venv with it, or
# `pip install -r requirements-gpu.txt` in a venv of your own and PYTHON=that/venv/bin/python.
# Arguments go to `simpsons train`, e.g. `scripts/gpu-check.sh --recipe studio --batch-size 64`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

"$PY" - <<'PYTHON'
import tensorflow as tf

build = tf.sysconfig.get_build_info()
print(f"TensorFlow {tf.__version__}, built with CUDA {build.get('cuda_version', 'none')}, "
      f"cuDNN {build.get('cudnn_version', 'none')}")
print("CPUs:", ", ".join(device.name for device in tf.config.list_physical_devices("CPU")))
gpus = tf.config.list_physical_devices("GPU")
for gpu in gpus:
    details = tf.config.experimental.get_device_details(gpu)
    print(f"GPU: {gpu.name} {details.get('device_name', '')} (compute capability "
          f"{details.get('compute_capability', '?')})")
if not gpus:
    raise SystemExit(
        "No GPU visible to TensorFlow. Install the GPU build (make run GPU=1, or pip install -r "
        "requirements-gpu.txt) and check that nvidia-smi lists the GPU."
    )
PYTHON

# A workspace of its own (kept, to look at the run) and the demo data: your runs and settings stay untouched.
SIMPSONS_HOME="$(mktemp -d -t simpsons-gpu-check.XXXXXX)"
export SIMPSONS_HOME
unset SIMPSONS_DATA
echo "Workspace for this check: $SIMPSONS_HOME"

"$PY" -m simpsons_core train --epochs 2 "$@"

"$PY" - <<'PYTHON'
import os
from pathlib import Path

from simpsons_core.run.lookup import read_run

[folder] = sorted((Path(os.environ["SIMPSONS_HOME"]) / "runs").glob("*/status.json"))
run = read_run(folder.parent)
devices = run.status.get("devices") or []
precision = run.status.get("precision") or {}
print(f"Run {run.id}: {run.state}; {run.status.get('strategy')} ({', '.join(devices)}); "
      f"{precision.get('reason', 'precision not recorded')}")
if run.state != "completed" or not any(device.startswith("GPU") for device in devices):
    raise SystemExit("The run did not complete on a GPU.")
print("GPU check passed.")
PYTHON
