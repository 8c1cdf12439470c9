import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

if keras.backend.backend() == "tensorflow":  # the tf.data tests below run on TensorFlow only (tests/conftest.py)
    import tensorflow as tf
    import tensorflow_datasets as tfds

from keras_nsde import data


def first_batch(dataset):
    images, labels = next(iter(dataset))
    return images.numpy(), labels.numpy()


@pytest.mark.all_backends
def test_digits_are_the_embedded_real_dataset_split_80_20():
    x_train, y_train = data.digits_arrays("train")
    x_test, y_test = data.digits_arrays("test")
    assert (len(x_train), len(x_test)) == (1437, 360)
    assert x_train.shape[1:] == (8, 8, 1) and x_train.dtype == np.float32
    assert 0.0 <= x_train.min() and x_train.max() == 1.0
    assert set(np.unique(y_test)) == set(range(10))


def test_digits_pipeline_batches_all_training_images():
    dataset = data.load("digits", "train", batch_size=100)
    assert sum(int(labels.shape[0]) for _, labels in dataset) == 1437
    images, labels = first_batch(dataset)
    assert images.shape == (100, 8, 8, 1) and labels.dtype == np.int32


@pytest.mark.parametrize("dataset, shape", [("cifar10", (32, 32, 3)), ("stl10", (96, 96, 3))])
def test_tfds_pipeline_scales_to_unit_range(dataset, shape):
    with tfds.testing.mock_data(num_examples=12):
        images, labels = first_batch(data.load(dataset, "train", batch_size=4))
    assert images.shape == (4,) + shape and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == np.int32


def test_cifar10_corrupted_pipeline_reads_a_corruption_at_a_level():
    assert "gaussian_noise" in data.cifar10_corruptions() and len(data.cifar10_corruptions()) == 19
    with tfds.testing.mock_data(num_examples=6):
        images, _ = first_batch(data.load_corrupted("fog", 3, batch_size=3))
    assert images.shape == (3, 32, 32, 3)


def test_value_error_for_corruption_level_outside_one_to_five():
    with pytest.raises(ValueError, match="level=6"):
        data.load_corrupted("fog", 6)


def test_tiny_imagenet_is_read_from_a_class_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("n01", "n02"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "train" / label / f"{i}.png")
    images, labels = first_batch(data.load("tiny_imagenet", "train", batch_size=6, data_dir=str(tmp_path), shuffle=False))
    assert images.shape == (6, 64, 64, 3)
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_value_error_when_tiny_imagenet_has_no_folder():
    with pytest.raises(ValueError, match="data_dir=None"):
        data.load("tiny_imagenet", "train")


def test_random_crop_with_padding_shifts_by_at_most_the_padding():
    from keras_nsde.data.augment import random_crop_with_padding

    image = tf.ones((6, 6, 1))
    crops = [random_crop_with_padding(2)(image, 0)[0].numpy() for _ in range(20)]
    assert all(c.shape == (6, 6, 1) for c in crops)
    # A crop keeps at least (6 - 2) x (6 - 2) of the original pixels.
    assert all(c.sum() >= 16 for c in crops)
    assert any(c.sum() < 36 for c in crops)


def test_value_error_for_unknown_dataset():
    with pytest.raises(ValueError, match="dataset='mnist'"):
        data.load("mnist", "train")


# In a fresh interpreter on JAX or PyTorch where no import finder finds TensorFlow, as in a venv without it.
WITHOUT_TENSORFLOW = """
import json, sys

class WithoutTensorFlow:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        return None if name.split(".")[0] == "tensorflow" else self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [WithoutTensorFlow(finder) for finder in sys.meta_path]
from keras_nsde import data
x, y = data.digits_arrays("train")
report = {"shape": list(x.shape), "labels": str(y.dtype)}
for name, load in [("load", lambda: data.load("digits", "train")), ("augment", lambda: __import__("keras_nsde.data.augment"))]:
    try:
        load()
        report[name] = None
    except ImportError as error:
        report[name] = str(error)
report["tensorflow_imported"] = "tensorflow" in sys.modules
print(json.dumps(report))
"""


@pytest.mark.all_backends
@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="the TensorFlow backend needs TensorFlow")
def test_digits_without_tensorflow_and_pipelines_name_the_tensorflow_extra():
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW], capture_output=True, text=True, env=env,
                            timeout=300, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"] == [1437, 8, 8, 1] and report["labels"] == "int32"
    assert not report["tensorflow_imported"]
    for feature in ("load", "augment"):
        assert report[feature] is not None and "keras_nsde[tensorflow]" in report[feature], report[feature]
