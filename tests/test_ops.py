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
