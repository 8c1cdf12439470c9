"""JAX's canonical-gradient 'same' convolution equals lax's convolution and its autodiff gradients."""

import keras
import numpy as np
import pytest

pytestmark = [
    pytest.mark.all_backends,
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX backend's convolution"),
]


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 5])
def test_values_and_gradients_equal_lax_autodiff(kernel_size):
    import jax
    import jax.numpy as jnp

    from keras_nsde.backend.jax_same_conv import same_conv2d

    rng = np.random.default_rng(kernel_size)
    x = jnp.asarray(rng.normal(size=(3, 7, 6, 4)))
    kernel = jnp.asarray(rng.normal(size=(kernel_size, kernel_size, 4, 5)))
    cotangent = jnp.asarray(rng.normal(size=(3, 7, 6, 5)))

    def reference(x, kernel):
        return keras.ops.conv(x, kernel, strides=1, padding="same")

    with jax.enable_x64(True):
        x, kernel, cotangent = (a.astype("float64") for a in (x, kernel, cotangent))
        expected, pullback = jax.vjp(reference, x, kernel)
        value, own_pullback = jax.vjp(same_conv2d, x, kernel)
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
        for own, reference_grad in zip(own_pullback(cotangent), pullback(cotangent)):
            np.testing.assert_allclose(own, reference_grad, rtol=1e-12, atol=1e-12)


def test_backend_vjp_uses_it_only_inside_reverse_mode():
    import jax.numpy as jnp

    from keras_nsde import backend
    from keras_nsde.backend import jax_same_conv
    from keras_nsde.backend.generic import Weights

    primitives = backend.get("jax")
    seen = []

    def function(x):
        seen.append(primitives.accelerated("same_conv2d", x))
        return x * 2.0

    assert primitives.accelerated("same_conv2d", jnp.ones(1)) is None
    _, grad_x, _ = primitives.vjp(function, jnp.ones(3), Weights([], []), jnp.ones(3))
    np.testing.assert_allclose(grad_x, 2.0)
    assert seen == [jax_same_conv.same_conv2d]  # on a CPU, the tests' device
    assert primitives.accelerated("same_conv2d", jnp.ones(1)) is None
