"""A small layer-test harness in the spirit of keras-hub's, on public APIs only."""

import keras
import pytest
import numpy as np


def deterministic_output(layer_or_model, x):
    """Output with training=False (no noise unless test-time noise is on)."""
    return keras.ops.convert_to_numpy(layer_or_model(x, training=False))


def run_serialization_test(layer, x):
    """get_config -> from_config gives an equal config and, with the weights copied, equal outputs."""
    expected = deterministic_output(layer, x)
    clone = type(layer).from_config(layer.get_config())
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(deterministic_output(clone, x), expected, rtol=1e-6, atol=1e-6)


def run_model_saving_test(model, x, path):
    """Saving to `.keras` and loading gives identical deterministic predictions."""
    expected = deterministic_output(model, x)
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(deterministic_output(restored, x), expected)
    return restored


# A test of a feature that only the TensorFlow backend has (in a module that runs on every backend).
tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow-only feature")
