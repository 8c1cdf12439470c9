"""Batched, prefetched tf.data pipelines for the paper's datasets and digits.

    train = keras_nsde.data.load("cifar10", "train", batch_size=128)   # augmented, shuffled
    test = keras_nsde.data.load("cifar10", "test", batch_size=500)
    noisy = keras_nsde.data.load_corrupted("gaussian_noise", level=3)
"""

import tensorflow as tf

from keras_nsde.data import sources
from keras_nsde.data.augment import random_crop_with_padding, to_unit_range
from keras_nsde.data.sources import cifar10_corruptions, digits_arrays

SOURCES = {
    "digits": sources.digits,
    "cifar10": sources.tfds_source("cifar10"),
    "stl10": sources.tfds_source("stl10"),
    "tiny_imagenet": sources.image_folder((64, 64)),
}
# The authors' random-crop padding (docs/paper-setup.md); none for 8x8 digits.
CROP_PADDING = {"digits": 0, "cifar10": 4, "stl10": 8, "tiny_imagenet": 8}
SHUFFLE_BUFFER = 10_000


def load(dataset, split, batch_size=128, augment=None, shuffle=None, data_dir=None, limit=None, seed=None):
    """Images scaled to [0, 1] (float32, (batch, H, W, C)) and int32 labels.

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
    if dataset not in SOURCES:
        raise ValueError(f"dataset must be one of {sorted(SOURCES)}. Received: dataset={dataset!r}")
    training = split.startswith("train")
    examples = SOURCES[dataset](split, data_dir=data_dir)
    if limit is not None:
        examples = examples.take(limit)
    examples = examples.map(to_unit_range, num_parallel_calls=tf.data.AUTOTUNE)
    if training if shuffle is None else shuffle:
        examples = examples.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    padding = CROP_PADDING[dataset]
    if (training if augment is None else augment) and padding:
        examples = examples.map(random_crop_with_padding(padding), num_parallel_calls=tf.data.AUTOTUNE)
    return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_corrupted(corruption, level, batch_size=500, data_dir=None, limit=None):
    """CIFAR-10-C test images for one corruption at `level` (1-5), from tfds `cifar10_corrupted`."""
    if level not in (1, 2, 3, 4, 5):
        raise ValueError(f"level must be 1, 2, 3, 4 or 5. Received: level={level!r}")
    examples = sources.tfds_source(f"cifar10_corrupted/{corruption}_{level}")("test", data_dir=data_dir)
    if limit is not None:
        examples = examples.take(limit)
    return examples.map(to_unit_range).batch(batch_size).prefetch(tf.data.AUTOTUNE)


__all__ = ["CROP_PADDING", "cifar10_corruptions", "digits_arrays", "load", "load_corrupted"]
