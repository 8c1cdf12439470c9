"""Where each tf.data pipeline's examples come from: the digits arrays, tensorflow-datasets, a folder.

Each source returns an unbatched `tf.data.Dataset` of (image, label) with
images as stored (uint8 or float in [0, 1]), shape (H, W, C). This module
imports TensorFlow (the `tensorflow` extra); `keras_nsde.data` imports it
only when a pipeline is asked for.
"""

import numpy as np

from keras_nsde import optional
from keras_nsde.data.digits import digits_arrays

tf = optional.require("tensorflow", extra="tensorflow")


def digits(split, data_dir=None):
    return tf.data.Dataset.from_tensor_slices(digits_arrays(split))


def tfds_source(name):
    """A source reading tensorflow-datasets' `name` (prepared under data_dir, or downloaded)."""

    def load(split, data_dir=None):
        tfds = optional.require("tensorflow_datasets", extra="data")
        return tfds.load(name, split=split, as_supervised=True, data_dir=data_dir, shuffle_files=split == "train")

    return load


def image_folder(image_size):
    """A source reading `data_dir/<split>/<class>/*.jpg|png` (Tiny-ImageNet laid out by class)."""

    def load(split, data_dir=None):
        import keras

        if data_dir is None:
            raise ValueError(
                "This dataset is read from a folder: pass data_dir holding <split>/<class>/ images. "
                "Received: data_dir=None"
            )
        return keras.utils.image_dataset_from_directory(
            f"{data_dir}/{split}", image_size=image_size, batch_size=None, label_mode="int", shuffle=False
        ).map(lambda image, label: (tf.cast(image, "uint8"), label))

    return load


def cifar10_corruptions():
    """The corruption names of tfds' `cifar10_corrupted` (each at levels 1-5)."""
    tfds = optional.require("tensorflow_datasets", extra="data")
    names = {config.name.rsplit("_", 1)[0] for config in tfds.builder_cls("cifar10_corrupted").BUILDER_CONFIGS}
    return sorted(names)


def as_numpy_arrays(dataset, limit=None):
    """(images, labels) NumPy arrays from an unbatched dataset, at most `limit` examples."""
    if limit is not None:
        dataset = dataset.take(limit)
    images, labels = zip(*dataset.as_numpy_iterator())
    return np.stack(images), np.asarray(labels)
