"""The TensorFlow boundary: the CLI's entry and the data, run-folder and settings modules never import
TensorFlow or Keras, so `simpsons scan`, `runs list` and a run's start stay quick."""

from __future__ import annotations

import subprocess
import sys

TF_FREE_MODULES = (
    "simpsons_core.cli.main",
    "simpsons_core.config",
    "simpsons_core.settings",
    "simpsons_core.cpu",
    "simpsons_core.data.images",
    "simpsons_core.data.folders",
    "simpsons_core.data.scan",
    "simpsons_core.data.scan_cache",
    "simpsons_core.data.near_duplicates",
    "simpsons_core.data.splits",
    "simpsons_core.data.decoding",
    "simpsons_core.data.demo",
    "simpsons_core.data.zip_import",
    "simpsons_core.data.editing",
    "simpsons_core.data.trash",
    "simpsons_core.data.changes",
    "simpsons_core.cli.data",
    "simpsons_core.run.folder",
    "simpsons_core.run.lock",
    "simpsons_core.run.launcher",
    "simpsons_core.run.lookup",
    "simpsons_core.run.summary",
    "simpsons_core.training.control",
    "simpsons_core.training.strategy",
    "simpsons_core.training.models",
    "simpsons_core.inference.calibration",
    "simpsons_core.inference.teachable_machine",  # `import-tm --help` reads its EXPORT_HELP
    "simpsons_core.inference.tfjs_layers",
)


def test_the_cli_and_the_tf_free_modules_leave_tensorflow_unimported() -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {TF_FREE_MODULES!r}: importlib.import_module(name)\n"
        "from simpsons_core.cli.main import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_every_package_init_is_empty() -> None:
    """An `__init__.py` that imported its modules would pull TensorFlow in with the first TF-free import."""
    from pathlib import Path

    import simpsons_core

    root = Path(simpsons_core.__file__).parent
    inits = sorted(root.rglob("__init__.py"))
    assert len(inits) >= 5
    assert [path for path in inits if path.parent != root and path.read_text().strip()] == []
