"""The seed tutorial's training input, as it wrote it: `ImageDataGenerator` + `flow_from_directory` + `fit`.

The only place in the project where the legacy class appears: it is the baseline the tf.data pipeline is
measured against. Keras 3.15 still ships it through TensorFlow's `tensorflow.keras` shim.
"""

from __future__ import annotations

from pathlib import Path

import keras


def tutorial_generator(train_dir: Path, image_size: int, batch_size: int, seed: int):
    """The tutorial's augmenting directory iterator (one-hot labels, nearest-neighbour resize, every epoch
    decodes every file again). Its length is one pass over the folder."""
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    train_datagen = ImageDataGenerator(
        rescale=1.0 / 255.0,
        shear_range=0.2,
        zoom_range=0.2,
        width_shift_range=0.2,
        height_shift_range=0.2,
        fill_mode="nearest",
        horizontal_flip=True,
    )
    return train_datagen.flow_from_directory(
        str(train_dir),
        target_size=(image_size, image_size),
        batch_size=batch_size,
        class_mode="categorical",
        seed=seed,
    )


def compile_as_tutorial(model: keras.Model) -> None:
    """The tutorial's compile call: categorical cross-entropy on one-hot labels, Adam's defaults."""
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
