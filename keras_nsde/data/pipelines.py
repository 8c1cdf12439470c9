"""Batched, prefetched tf.data pipelines (the `tensorflow` extra); `keras_nsde.data.load` imports this on use."""

from keras_nsde import optional
from keras_nsde.data import sources
from keras_nsde.data.augment import random_crop_with_padding, to_unit_range

tf = optional.require("tensorflow", extra="tensorflow")

SOURCES = {
    "digits": sources.digits,
    "cifar10": sources.tfds_source("cifar10"),
    "stl10": sources.tfds_source("stl10"),
    "tiny_imagenet": sources.image_folder((64, 64)),
}
SHUFFLE_BUFFER = 10_000


def load(dataset, split, batch_size, augment=None, shuffle=None, data_dir=None, limit=None, seed=None, crop_padding=0):
    """See `keras_nsde.data.load` (arguments checked there)."""
    training = split.startswith("train")
    examples = SOURCES[dataset](split, data_dir=data_dir)
    if limit is not None:
        examples = examples.take(limit)
    examples = examples.map(to_unit_range, num_parallel_calls=tf.data.AUTOTUNE)
    if training if shuffle is None else shuffle:
        examples = examples.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    if (training if augment is None else augment) and crop_padding:
        examples = examples.map(random_crop_with_padding(crop_padding), num_parallel_calls=tf.data.AUTOTUNE)
    return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_corrupted(corruption, level, batch_size, data_dir, limit):
    """See `keras_nsde.data.load_corrupted`."""
    examples = sources.tfds_source(f"cifar10_corrupted/{corruption}_{level}")("test", data_dir=data_dir)
    if limit is not None:
        examples = examples.take(limit)
    return examples.map(to_unit_range).batch(batch_size).prefetch(tf.data.AUTOTUNE)
