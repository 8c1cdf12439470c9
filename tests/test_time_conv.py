"""TimeConv2D is the paper's convolution of [t * 1, h] on every backend, values and gradients."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde.layers.time_conv import TimeConv2D
from tests.harness import value_and_gradients

pytestmark = pytest.mark.all_backends


@pytest.mark.parametrize("height, width, kernel_size", [(6, 5, 3), (1, 4, 3), (7, 7, 5), (3, 2, 1)])
def test_time_conv_equals_the_convolution_of_the_concatenated_time_plane(height, width, kernel_size):
    rng = np.random.default_rng(2)
    layer = TimeConv2D(8, kernel_size=kernel_size)
    h = rng.normal(size=(2, height, width, 8)).astype("float32")
    layer.build(h.shape)
    layer.bias.assign(rng.normal(size=(8,)).astype("float32"))
    weights = ops.convert_to_tensor(rng.normal(size=(2, height, width, 8)).astype("float32"))
    t = 0.7

    def concatenated(x):
        time_plane = ops.ones_like(x[..., :1]) * t
        return ops.conv(ops.concatenate([time_plane, x], axis=-1), layer.kernel, padding="same") + layer.bias

    ours = value_and_gradients(lambda x: ops.sum(layer(x, t=t) * weights), layer, h)
    reference = value_and_gradients(lambda x: ops.sum(concatenated(x) * weights), layer, h)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(h, t=t)), ops.convert_to_numpy(concatenated(h)), rtol=1e-4, atol=1e-4)
    assert len(ours) == 3  # h, kernel, bias
    for ours_grad, reference_grad in zip(ours, reference):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours_grad), keras.ops.convert_to_numpy(reference_grad), rtol=1e-4, atol=1e-4
        )
