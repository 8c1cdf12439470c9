"""scikit-learn's digits as NumPy arrays: no TensorFlow, for every Keras backend."""

import numpy as np

from keras_nsde import optional

DIGITS_TEST_FRACTION = 0.2


def digits_arrays(split):
    """scikit-learn's 8x8 digits (1,797 images shipped with it): float32 (n, 8, 8, 1) in [0, 1], int32 labels.

    A fixed stratified 80/20 split (1,437 training and 360 test images);
    `split` is "train" or "test". NumPy arrays, which `model.fit` takes on
    every backend.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test' for digits. Received: split={split!r}")
    sklearn_datasets = optional.require("sklearn.datasets", extra="data")
    train_test_split = optional.require("sklearn.model_selection", extra="data").train_test_split

    digits = sklearn_datasets.load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=DIGITS_TEST_FRACTION, random_state=0, stratify=digits.target
    )
    images, labels = {"train": (x_train, y_train), "test": (x_test, y_test)}[split]
    return images, np.asarray(labels, "int32")
