"""A head on frozen features: the frozen body runs once per kept view, the head trains alone, and the saved
model is the whole network with the pretrained body untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simpsons_core.config import TrainConfig
from simpsons_core.run.lookup import read_run

pytestmark = pytest.mark.slow


def test_only_a_frozen_body_with_the_expected_head_qualifies(workspace: Path) -> None:
    from simpsons_core.training.frozen_features import trains_only_its_head
    from simpsons_core.training.models import build_model

    assert trains_only_its_head(build_model("lite0-frozen", 32, 4))
    assert not trains_only_its_head(build_model("lite0", 32, 4))
    assert not trains_only_its_head(build_model("compact", 32, 4))


def test_lite0_frozen_trains_its_head_on_features_computed_once(workspace: Path, tiny_dataset: Path) -> None:
    import keras

    from simpsons_core.training.frozen_features import FEATURE_PASSES
    from simpsons_core.training.models import build_model
    from simpsons_core.training.trainer import train_in_foreground

    phases: list[dict] = []
    config = TrainConfig(
        data_dir=str(tiny_dataset), model="lite0-frozen", image_size=32, epochs=3, batch_size=16
    )
    info = train_in_foreground(config, workspace / "runs" / "frozen", progress=phases.append)
    assert info.state == "completed", info.error
    features = [line for line in phases if line.get("phase") == "features"]
    steps = -(-info.dataset["train_images"] // 16)
    validation_batches = -(-info.dataset["validation_images"] // 16)
    assert features[-1]["total"] == steps * FEATURE_PASSES + validation_batches
    assert len(info.epochs) == 3 and info.best_val_accuracy is not None

    saved = keras.saving.load_model(info.model_path, compile=False)
    fresh = build_model("lite0-frozen", 32, 4)
    assert [layer.name for layer in saved.layers] == [layer.name for layer in fresh.layers]
    body = saved.get_layer("head_conv").get_weights()[0]
    assert np.array_equal(body, fresh.get_layer("head_conv").get_weights()[0])  # pretrained, untouched
    head = saved.get_layer("predictions").get_weights()[0]
    assert not np.allclose(head, fresh.get_layer("predictions").get_weights()[0])  # trained
    assert read_run(info.path).state == "completed"
