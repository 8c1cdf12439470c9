"""The Winograd F(2x2, 3x3) and F(4x4, 3x3) kernels against TensorFlow's convolutions."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels import conv_ops, load_kernels
from keras_nsde.backend.tensorflow.same_conv import same_conv2d

pytestmark = pytest.mark.skipif(load_kernels() is None, reason="compiled kernels not built here")


def conv2d(x, kernel):
    return tf.nn.conv2d(x, kernel, 1, "SAME")


def _inputs(shape, c_out, seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    kernel = tf.constant(rng.normal(size=(3, 3, shape[-1], c_out)).astype("float32"))
    dy = tf.constant(rng.normal(size=shape[:-1] + (c_out,)).astype("float32"))
    return x, kernel, dy


# The error bound, relative to the root mean square of the exact (float64) result.
# F(4x4)'s larger transform coefficients cost about one decimal digit: on
# (4, 30, 30, 64) inputs the largest error was 2.6e-5 of the RMS for F(4x4),
# 1.9e-6 for F(2x2) and 4.3e-6 for tf.nn.conv2d in float32.
RELATIVE_ERROR = {2: 1e-5, 4: 1e-4}


def assert_close_to_exact(got, exact, tile):
    exact = np.asarray(exact, np.float64)
    np.testing.assert_allclose(got, exact, rtol=0, atol=RELATIVE_ERROR[tile] * np.sqrt(np.mean(exact**2)))


def float64(*tensors):
    return [tf.cast(t, tf.float64) for t in tensors]


# Odd sizes (partial tiles of both sizes), one pixel, more tiles than one
# 18-tile chunk, and chunks ending in 1..5 leftover rows of the 6-row block
# (F(2x2): 23, 15, 4, 1, 2 tiles; F(4x4): 27, 20, 5, 4, 1 tiles); output
# channels that take every column block of the products (8 and 16 lanes: 8,
# 16, 24, 40, 48, 64 = pairs of wide vectors, one wide, an 8-lane tail).
@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize(
    "shape, c_out",
    [((2, 7, 5, 8), 16), ((1, 1, 1, 16), 8), ((3, 10, 12, 24), 40), ((1, 2, 46, 8), 8), ((1, 6, 10, 40), 16),
     ((1, 4, 4, 8), 24), ((1, 2, 3, 8), 8), ((2, 5, 6, 16), 48), ((1, 3, 4, 64), 64), ((1, 8, 40, 8), 8),
     ((1, 4, 20, 8), 8), ((2, 4, 8, 16), 8)],
)
def test_convolution_and_filter_gradient_equal_exact_ones(shape, c_out, tile):
    x, kernel, dy = _inputs(shape, c_out)
    assert_close_to_exact(conv_ops.winograd_conv2d(x, kernel, tile=tile), conv2d(*float64(x, kernel)), tile)
    assert_close_to_exact(
        load_kernels().knsde_winograd_filter_grad(x, dy, tile=tile), conv_ops._filter_gradient_twin(*float64(x, dy)), tile
    )


def _value_and_gradients(conv, x, kernel, weights):
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        loss = tf.reduce_sum(tf.sin(conv(x, kernel)) * weights)
    return [loss, *tape.gradient(loss, [x, kernel])]


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("graph", [False, True])
def test_gradients_equal_conv2d_gradients(graph, tile):
    x, kernel, weights = _inputs((2, 9, 6, 8), 16, seed=1)
    kernel = kernel / 6.0  # outputs of order 1, where sin's derivatives are not dominated by rounding of large arguments
    ours = (tf.function(_value_and_gradients) if graph else _value_and_gradients)(
        functools.partial(conv_ops.winograd_conv2d, tile=tile), x, kernel, weights)
    for got, exact in zip(ours, _value_and_gradients(conv2d, *float64(x, kernel, weights))):
        assert_close_to_exact(got, exact, tile)


def test_the_default_tile_is_four_and_other_sizes_are_refused():
    x, kernel, _ = _inputs((1, 4, 4, 8), 8)
    graph = tf.function(conv_ops.winograd_conv2d).get_concrete_function(x, kernel).graph
    assert [op.get_attr("tile") for op in graph.get_operations() if op.type == "KnsdeWinogradConv"] == [4]
    with pytest.raises(tf.errors.InvalidArgumentError, match="tile must be 2 or 4, got 3"):
        conv_ops.winograd_conv2d(x, kernel, tile=3)


def test_eager_gradient_of_the_input_alone():
    x, kernel, weights = _inputs((1, 4, 6, 8), 8, seed=6)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(conv_ops.winograd_conv2d(x, kernel) * weights)
    with tf.GradientTape() as reference_tape:
        reference_tape.watch(x)
        reference = tf.reduce_sum(conv2d(x, kernel) * weights)
    np.testing.assert_allclose(tape.gradient(loss, x), reference_tape.gradient(reference, x), rtol=1e-4, atol=1e-4)


def test_second_derivative_equals_float64_conv2d():
    x, kernel, _ = _inputs((2, 5, 6, 8), 8, seed=2)

    def hessian_vector(conv, x, kernel):
        with tf.GradientTape() as outer:
            outer.watch(kernel)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(tf.sin(conv(x, kernel)))
            projected = tf.reduce_sum(inner.gradient(loss, x) * x)
        return outer.gradient(projected, kernel)

    want = hessian_vector(conv2d, tf.cast(x, tf.float64), tf.cast(kernel, tf.float64))
    np.testing.assert_allclose(hessian_vector(conv_ops.winograd_conv2d, x, kernel), want, rtol=1e-4, atol=1e-3)  # max |want| ~ 136


def test_filter_gradient_differentiates_like_conv2d_backprop_filter():
    x, _, dy = _inputs((2, 5, 4, 8), 16, seed=5)

    def gradients(filter_gradient):
        with tf.GradientTape() as tape:
            tape.watch([x, dy])
            loss = tf.reduce_sum(tf.sin(filter_gradient(x, dy)))
        return tape.gradient(loss, [x, dy])

    for got, want in zip(gradients(load_kernels().knsde_winograd_filter_grad), gradients(conv_ops._filter_gradient_twin)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(0, 4, 4, 8), (2, 0, 3, 8)])
def test_empty_images_give_empty_outputs_and_zero_kernel_gradient(shape):
    x, kernel, dy = _inputs(shape, 8)
    assert conv_ops.winograd_conv2d(x, kernel).shape == shape[:-1] + (8,)
    np.testing.assert_array_equal(load_kernels().knsde_winograd_filter_grad(x, dy), np.zeros((3, 3, 8, 8)))


def test_filter_gradient_is_deterministic():
    x, _, dy = _inputs((4, 16, 16, 8), 8, seed=3)  # 256 tiles: several chunks summed in parallel
    first = load_kernels().knsde_winograd_filter_grad(x, dy).numpy()
    for _ in range(3):
        np.testing.assert_array_equal(load_kernels().knsde_winograd_filter_grad(x, dy).numpy(), first)


def test_channels_not_multiple_of_8_are_refused_by_name():
    x, kernel, _ = _inputs((1, 4, 4, 8), 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="output channels must be a positive multiple of 8, got 6"):
        conv_ops.winograd_conv2d(x, kernel[..., :6])
    with pytest.raises(tf.errors.InvalidArgumentError, match="kernel must be \\(3, 3, C_in, C_out\\)"):
        conv_ops.winograd_conv2d(x, kernel[:2])


@pytest.mark.parametrize(
    "kernel_shape, dtype, expected",
    [((3, 3, 8, 16), tf.float32, True), ((3, 3, 4, 16), tf.float32, False), ((5, 5, 8, 8), tf.float32, False),
     ((3, 3, 8, 8), tf.float64, False), ((3, 3, 8, 0), tf.float32, False)],
)
def test_same_conv2d_takes_winograd_where_it_applies(kernel_shape, dtype, expected):
    x = tf.zeros((1, 4, 4, kernel_shape[2]), dtype)
    kernel = tf.zeros(kernel_shape, dtype)
    graph = tf.function(same_conv2d).get_concrete_function(x, kernel).graph
    used = any(op.type == "KnsdeWinogradConv" for op in graph.get_operations())
    assert used == expected


def test_same_conv2d_under_xla_falls_back_to_tensorflow():
    x, kernel, _ = _inputs((1, 6, 6, 8), 8, seed=4)
    compiled = tf.function(same_conv2d, jit_compile=True)
    np.testing.assert_allclose(compiled(x, kernel), conv2d(x, kernel), rtol=1e-5, atol=1e-4)
