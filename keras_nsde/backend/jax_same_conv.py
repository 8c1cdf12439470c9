"""A 'same' convolution on JAX whose gradients are convolutions in XLA:CPU's canonical form.

XLA:CPU runs a convolution with Eigen only in the canonical form
`b01f_01io->b01f` (NHWC input, HWIO kernel); its pass that rewrites other
forms into it visits the entry computation alone. JAX's gradients of a
convolution are in other forms (the input gradient reads the kernel as
`01oi`, the kernel gradient is `f01b_i01o->01bf`), so inside a rolled loop
(a `lax.scan` or `while` body: the backward loops of the pathwise and
reversible gradients) they fall back to a naive loop nest, tens of times
slower than unrolled. Here both gradients are written as canonical
convolutions of transposed operands:

    y  = conv(x, K)                         padding (lo, hi) = ((k - 1) // 2, k // 2)
    dx = conv(dy, flip(K) with I, O swapped)  padding (k - 1 - lo, k - 1 - hi)
    dK = conv(x as (C_in, H, W, batch), dy as (H, W, batch, C_out)), transposed back to (k, k, C_in, C_out)

A `jax.custom_vjp` has no forward mode, so the backend's `vjp` turns it on
only while it traces a function for a reverse-mode product
(`canonical_gradients()`); everywhere else `ops.conv` runs.
"""

import contextlib
import contextvars

import jax
import jax.numpy as jnp

_ENABLED = contextvars.ContextVar("keras_nsde_canonical_conv_gradients", default=False)


@contextlib.contextmanager
def canonical_gradients():
    """Within the block (reverse mode only), `enabled()` is True on a CPU."""
    token = _ENABLED.set(jax.default_backend() == "cpu")
    try:
        yield
    finally:
        _ENABLED.reset(token)


def enabled():
    return _ENABLED.get()


def _conv(x, kernel, padding):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _same_padding(kernel):
    """Keras' 'same' padding, stride 1: k - 1 in all, the odd one after."""
    return [((k - 1) // 2, k // 2) for k in kernel.shape[:2]]


@jax.custom_vjp
def same_conv2d(x, kernel):
    """conv2d(x, kernel), stride 1, 'same' zero padding, x `(batch, H, W, C_in)`, kernel `(k, k, C_in, C_out)`."""
    return _conv(x, kernel, _same_padding(kernel))


def _forward(x, kernel):
    return same_conv2d(x, kernel), (x, kernel)


def _backward(residuals, upstream):
    x, kernel = residuals
    padding = _same_padding(kernel)
    flipped = jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))  # (k, k, C_out, C_in)
    input_padding = [(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel.shape[:2], padding)]
    grad_x = _conv(upstream, flipped, input_padding)
    # dK[a, b, i, o] = sum_{n, h, w} x_pad[n, h + a, w + b, i] dy[n, h, w, o]: C_in as the batch, the batch as
    # the features, dy as an H x W kernel.
    grad_kernel = _conv(jnp.transpose(x, (3, 1, 2, 0)), jnp.transpose(upstream, (1, 2, 0, 3)), padding)
    return grad_x.astype(x.dtype), jnp.transpose(grad_kernel, (1, 2, 0, 3)).astype(kernel.dtype)


same_conv2d.defvjp(_forward, _backward)
