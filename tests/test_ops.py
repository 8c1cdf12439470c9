"""keras_nsde.ops on every backend, drop-ins included: values and gradients against NumPy's closed forms."""

import keras
import numpy as np
import pytest

from keras_nsde import backend, ops

pytestmark = pytest.mark.all_backends

DTYPE = "float32" if keras.backend.backend() == "jax" else "float64"  # JAX runs without 64-bit types by default
TOLERANCE = 1e-4 if DTYPE == "float32" else 1e-10


def reference_same_conv(x, kernel, weights):
    """y = 'same' conv2d(x, kernel), and the gradients of sum(y * weights) for x and kernel, by explicit sums."""
    k = kernel.shape[0]
    before = (k - 1) // 2  # TensorFlow's and Keras' 'same': the extra row and column of padding after
    padded = np.pad(x, ((0, 0), (before, k - 1 - before), (before, k - 1 - before), (0, 0)))
    height, width = x.shape[1:3]
    y = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    grad_padded = np.zeros_like(padded)
    grad_kernel = np.zeros_like(kernel)
    for i in range(k):
        for j in range(k):
            window = padded[:, i : i + height, j : j + width, :]
            y += np.einsum("bhwc,co->bhwo", window, kernel[i, j])
            grad_kernel[i, j] = np.einsum("bhwc,bhwo->co", window, weights)
            grad_padded[:, i : i + height, j : j + width, :] += np.einsum("bhwo,co->bhwc", weights, kernel[i, j])
    return y, grad_padded[:, before : before + height, before : before + width, :], grad_kernel


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 5])
def test_same_conv2d_and_its_gradients_equal_explicit_sums(kernel_size):
    rng = np.random.default_rng(kernel_size)
    x = rng.normal(size=(2, 6, 5, 3)).astype(DTYPE)
    kernel = rng.normal(size=(kernel_size, kernel_size, 3, 4)).astype(DTYPE)
    weights = rng.normal(size=(2, 6, 5, 4)).astype(DTYPE)
    want_y, want_dx, want_dkernel = reference_same_conv(x, kernel, weights)
    x_, kernel_, weights_ = (keras.ops.convert_to_tensor(a) for a in (x, kernel, weights))

    y = ops.same_conv2d(x_, kernel_)
    dx = backend.get().input_gradient(lambda v: keras.ops.sum(ops.same_conv2d(v, kernel_) * weights_), x_)
    dkernel = backend.get().input_gradient(lambda k: keras.ops.sum(ops.same_conv2d(x_, k) * weights_), kernel_)

    for got, want in ((y, want_y), (dx, want_dx), (dkernel, want_dkernel)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=TOLERANCE, atol=TOLERANCE)


def test_affine_and_its_gradients_equal_numpy():
    rng = np.random.default_rng(0)
    x, kernel, bias, weights = (rng.normal(size=s).astype(DTYPE) for s in ((5, 3), (3, 4), (4,), (5, 4)))
    x_, kernel_, bias_, weights_ = (keras.ops.convert_to_tensor(a) for a in (x, kernel, bias, weights))

    y = ops.affine(x_, kernel_, bias_)
    dx = backend.get().input_gradient(lambda v: keras.ops.sum(ops.affine(v, kernel_, bias_) * weights_), x_)
    dkernel = backend.get().input_gradient(lambda k: keras.ops.sum(ops.affine(x_, k, bias_) * weights_), kernel_)
    dbias = backend.get().input_gradient(lambda b: keras.ops.sum(ops.affine(x_, kernel_, b) * weights_), bias_)

    wanted = (x @ kernel + bias, weights @ kernel.T, x.T @ weights, weights.sum(axis=0))
    for got, want in zip((y, dx, dkernel, dbias), wanted):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize("options", [{"activation": "tanh"}, {"activation": None}, {"use_bias": False}])
def test_a_dense_layer_called_by_the_solver_computes_its_affine_map(options):
    from keras_nsde.layers.direct_call import call_layer, is_plain_dense

    layer = keras.layers.Dense(4, dtype=DTYPE, bias_initializer="random_normal", **options)
    layer.build((None, 3))
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(DTYPE)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = keras.ops.convert_to_numpy(layer.bias) if layer.use_bias else 0.0
    want = np.tanh(x @ kernel + bias) if options.get("activation") == "tanh" else x @ kernel + bias
    assert is_plain_dense(layer) == options.get("use_bias", True)
    got = keras.ops.convert_to_numpy(call_layer(layer, keras.ops.convert_to_tensor(x)))
    tolerance = TOLERANCE if is_plain_dense(layer) else 1e-6  # Keras' own Dense.call on PyTorch rounds float64 to float32
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
