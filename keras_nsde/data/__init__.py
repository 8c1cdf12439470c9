"""The paper's datasets: the digits as NumPy arrays, and tf.data pipelines for every dataset.

    x, y = keras_nsde.data.digits_arrays("train")                       # NumPy, any backend, no TensorFlow
    train = keras_nsde.data.load("cifar10", "train", batch_size=128)   # tf.data: augmented, shuffled
    noisy = keras_nsde.data.load_corrupted("gaussian_noise", level=3)

Importing this package imports no TensorFlow. The tf.data pipelines (`load`,
`load_corrupted`, `cifar10_corruptions`) import it when called and raise an
ImportError naming the `tensorflow` extra where it is missing; `model.fit`
takes them on every Keras backend.
"""

import importlib
import numbers

from keras_nsde.data.digits import digits_arrays

DATASETS = ("cifar10", "digits", "stl10", "tiny_imagenet")
# The authors' random-crop padding (docs/paper-setup.md); none for 8x8 digits.
CROP_PADDING = {"digits": 0, "cifar10": 4, "stl10": 8, "tiny_imagenet": 8}


def load(dataset, split, batch_size=128, augment=None, shuffle=None, data_dir=None, limit=None, seed=None):
    """A `tf.data.Dataset` of images scaled to [0, 1] (float32, (batch, H, W, C)) and int32 labels.

    Args:
        dataset: "digits" (scikit-learn, offline), "cifar10", "stl10" (tfds),
            or "tiny_imagenet" (a folder `data_dir/<split>/<class>/`).
        split: "train" or "test" (tfds split names such as "train[:10%]" work
            for tfds datasets).
        batch_size: examples per batch.
        augment: random crop with the authors' padding; default: on for training splits.
        shuffle: default: on for training splits.
        data_dir: tfds data folder, or the image folder for tiny_imagenet.
        limit: keep only the first `limit` examples.
        seed: shuffle and augmentation seed.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}. Received: dataset={dataset!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1. Received: batch_size={batch_size!r}")
    if not isinstance(split, str):
        raise ValueError(f"split must be a string such as 'train' or 'test'. Received: split={split!r}")
    return _pipelines().load(dataset, split, int(batch_size), augment, shuffle, data_dir, limit, seed, CROP_PADDING[dataset])


def load_corrupted(corruption, level, batch_size=500, data_dir=None, limit=None):
    """CIFAR-10-C test images for one corruption at `level` (1-5), from tfds `cifar10_corrupted` (tf.data)."""
    if level not in (1, 2, 3, 4, 5) or isinstance(level, bool):
        raise ValueError(f"level must be 1, 2, 3, 4 or 5. Received: level={level!r}")
    return _pipelines().load_corrupted(corruption, int(level), batch_size, data_dir, limit)


def cifar10_corruptions():
    """The corruption names of tfds' `cifar10_corrupted` (each at levels 1-5)."""
    return importlib.import_module("keras_nsde.data.sources").cifar10_corruptions()


def _pipelines():
    """The tf.data module, imported on first use (an ImportError naming the `tensorflow` extra without it)."""
    return importlib.import_module("keras_nsde.data.pipelines")


__all__ = ["CROP_PADDING", "DATASETS", "cifar10_corruptions", "digits_arrays", "load", "load_corrupted"]
