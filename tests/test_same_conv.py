import numpy as np
import pytest
import tensorflow as tf

from keras_nsde.backend.tensorflow.same_conv import _conv_with_forward_gradients, same_conv2d
from keras_nsde.layers.time_conv import TimeConv2D


def _value_and_gradients(conv, x, kernel, weights):
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        loss = tf.reduce_sum(conv(x, kernel) * weights)
    return [loss, *tape.gradient(loss, [x, kernel])]


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("graph", [False, True])
def test_forward_gradient_convolution_matches_conv2d(kernel_size, graph):
    rng = np.random.default_rng(kernel_size)
    x = tf.constant(rng.normal(size=(3, 7, 6, 4)))
    kernel = tf.constant(rng.normal(size=(kernel_size, kernel_size, 4, 5)))
    weights = tf.constant(rng.normal(size=(3, 7, 6, 5)))
    ours = tf.function(_value_and_gradients) if graph else _value_and_gradients
    expected = _value_and_gradients(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"), x, kernel, weights)
    for got, want in zip(ours(_conv_with_forward_gradients, x, kernel, weights), expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_second_order_gradient_matches_conv2d():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 5, 5, 3)))
    kernel = tf.constant(rng.normal(size=(3, 3, 3, 3)))

    def hessian_vector(conv):
        with tf.GradientTape() as outer:
            outer.watch(kernel)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(tf.sin(conv(x, kernel)))
            dx = inner.gradient(loss, x)
            projected = tf.reduce_sum(dx * x)
        return outer.gradient(projected, kernel)

    np.testing.assert_allclose(
        hessian_vector(_conv_with_forward_gradients).numpy(),
        hessian_vector(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME")).numpy(),
        rtol=1e-10, atol=1e-10,
    )


def test_same_conv2d_is_conv2d_in_float32():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 6, 6, 8)), tf.float32)
    kernel = tf.constant(rng.normal(size=(3, 3, 8, 8)), tf.float32)
    exact = tf.nn.conv2d(tf.cast(x, tf.float64), tf.cast(kernel, tf.float64), 1, "SAME").numpy()
    # Where the kernels are built this is Winograd F(4x4, 3x3), whose float32 error is up to ~3e-5 of the RMS
    np.testing.assert_allclose(same_conv2d(x, kernel), exact, rtol=0, atol=1e-4 * np.sqrt(np.mean(exact**2)))


@pytest.mark.parametrize("kernel_size", [0, 2, 3.0])
def test_value_error_when_kernel_size_is_not_odd(kernel_size):
    with pytest.raises(ValueError, match=f"kernel_size=.*{kernel_size}"):
        TimeConv2D(4, kernel_size=kernel_size)

