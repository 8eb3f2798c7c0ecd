"""Grad-CAM on the tutorial and compact networks: the right layer, a normalised finite heatmap that depends on
the class asked for, an overlay, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simpsons_core.cli.main import main
from simpsons_core.inference.explain import MIN_OVERLAY_SIDE, explain, grad_cam, last_conv_layer
from simpsons_core.inference.predict import Predictor

pytest_plugins = ["run_fixtures"]


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor.from_run(trained_run)


@pytest.fixture(scope="module")
def picture(tiny_dataset: Path) -> Path:
    return sorted((tiny_dataset / "simpson_testset").rglob("*.jpg"))[0]


def explain_size(picture: Path) -> tuple[int, int]:
    """The overlay's size for `picture`: its own, or enlarged to `MIN_OVERLAY_SIDE` on the shorter side."""
    with Image.open(picture) as image:
        scale = max(1.0, MIN_OVERLAY_SIDE / min(image.size))
        return round(image.width * scale), round(image.height * scale)


def assert_normalised(heatmap: np.ndarray, size: int) -> None:
    assert heatmap.shape == (size, size) and heatmap.dtype == np.float32
    assert np.isfinite(heatmap).all()
    assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)


@pytest.mark.parametrize(("name", "layer_type"), [("tutorial", "Conv2D"), ("compact", "Activation")])
def test_both_networks_get_a_class_dependent_heatmap(name: str, layer_type: str, tmp_path: Path) -> None:
    """Through a save and load, as a run's model is used (a loaded Sequential model's graph differs)."""
    import keras

    from simpsons_core.training.models import build_model

    keras.utils.set_random_seed(0)
    build_model(name, 32, 4).save(tmp_path / "model.keras")
    model = keras.saving.load_model(tmp_path / "model.keras")
    layer = last_conv_layer(model)
    assert type(layer).__name__ == layer_type and len(layer.output.shape) == 4
    inputs = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    heatmaps = [grad_cam(model, inputs, index) for index in range(4)]
    nonempty = [h for h in heatmaps if h.max() > 0]
    assert len(nonempty) >= 2
    for heatmap in nonempty:
        assert_normalised(heatmap, 32)
    assert max(np.abs(a - b).max() for a in nonempty for b in nonempty) > 0.1


def test_explaining_a_run_for_the_predicted_and_another_class(predictor: Predictor, picture: Path) -> None:
    predicted = explain(predictor, picture)
    assert predicted.class_name == predicted.predicted == predictor.predict_one(picture).label
    assert_normalised(predicted.heatmap, predictor.image_size)
    other = next(name for name in predictor.labels if name != predicted.predicted)
    chosen = explain(predictor, picture, other)
    assert chosen.class_name == other and chosen.predicted == predicted.predicted
    assert np.isfinite(chosen.heatmap).all() and 0 <= chosen.heatmap.min() <= chosen.heatmap.max() <= 1
    assert not np.allclose(chosen.heatmap, predicted.heatmap, atol=0.05)
    width, height = Image.open(picture).size
    overlay = predicted.overlay
    assert overlay.mode == "RGB" and min(overlay.size) == max(MIN_OVERLAY_SIDE, min(width, height))
    assert overlay.width / overlay.height == pytest.approx(width / height, rel=0.02)


def test_unknown_class_and_model_without_convolutions_are_refused(
    predictor: Predictor, picture: Path
) -> None:
    import keras

    with pytest.raises(ValueError, match="Unknown class 'maggie_simpson'"):
        explain(predictor, picture, "maggie_simpson")
    dense_only = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no convolution layer"):
        grad_cam(dense_only, np.zeros((8, 8, 3), np.float32))


def test_cli_writes_the_overlay(trained_run: Path, picture: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cam.png"
    assert main(["explain", str(trained_run), str(picture), "-o", str(out), "--class", "lisa_simpson"]) == 0
    assert "heatmap for lisa_simpson" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == explain_size(picture)
    assert main(["explain", str(trained_run), str(tmp_path / "missing.jpg"), "-o", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
