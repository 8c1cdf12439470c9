"""The JAX backend: stateless sampling from JAX keys; the rest in keras.ops (`generic`)."""

import jax
import jax.numpy as jnp

from keras_nsde.backend import unsupported
from keras_nsde.backend.generic import (  # noqa: F401
    compile_function,
    group_norm,
    integrate,
    integrate_pathwise,
    random_shape,
    same_conv2d,
    size,
    stateless,
    trace,
)


def seed(values):
    """A per-call seed as a raw JAX key, uint32 of shape (2,)."""
    return jnp.asarray(values).astype("uint32")


def fold_in(seed, n):
    return jax.random.fold_in(seed, n)


def uniform(shape, seed, dtype):
    return jax.random.uniform(seed, tuple(shape), dtype=dtype)


def replica_seed(seed):
    """Under `keras.distribution.DataParallel` the noise is one array sharded like the batch: nothing to fold."""
    return seed


def executing_eagerly(x):
    return not isinstance(x, jax.core.Tracer)


def integrate_reversible(*args, **kwargs):
    raise unsupported("gradient='reversible'", "jax")


def weight_jvp(function, variables, direction):
    """(y, dy/dw v) for y = function() reading `variables`: jax.jvp with the weights passed explicitly."""
    return jax.jvp(stateless(function, variables), tuple(v.value for v in variables), tuple(direction))


def jacobian_products(function, x, v):
    """(J v, J^T J v) for J = d function / dx at x."""
    y, jv = jax.jvp(function, (x,), (v,))
    _, pullback = jax.vjp(function, x)
    return jv, pullback(jv)[0]
