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


def value_and_gradients(loss, layer, x):
    """Gradients of loss(x) with respect to x and the layer's trainable weights, on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(x)
        return tape.gradient(value, [x] + layer.trainable_variables)
    if backend == "jax":
        import jax

        def stateless(values, x):
            with keras.StatelessScope(state_mapping=list(zip(layer.trainable_variables, values))):
                return loss(x)

        grads = jax.grad(stateless, argnums=(0, 1))([v.value for v in layer.trainable_variables], x)
        return [grads[1]] + list(grads[0])
    import torch

    x = torch.as_tensor(keras.ops.convert_to_numpy(x)).requires_grad_(True)
    value = loss(x)
    return torch.autograd.grad(value, [x] + [v.value for v in layer.trainable_variables])
