"""The JAX backend: an unrolled time loop, stateless sampling from JAX keys; the rest in keras.ops (`generic`)."""

import functools

import jax
import jax.numpy as jnp

from keras_nsde.backend import generic, unsupported
from keras_nsde.backend.generic import (  # noqa: F401
    compile_function,
    group_norm,
    random_shape,
    same_conv2d,
    size,
    stateless,
    trace,
)


# Up to this many steps the loop is unrolled: XLA:CPU runs convolutions inside a while loop
# about 35x slower than the same convolutions unrolled (an 11-step 3x3 conv loop's gradient,
# 32x30x30x64: 27.5 s in a scan, 0.75 s unrolled, measured 2026-11-25 on the 2-core CPU).
MAX_UNROLLED_STEPS = 100


def integrate(step, state0, num_steps, return_trajectory=False, output=None):
    """state_{n+1} = step(state_n, n) for n < num_steps, as a `lax.scan` (reverse-differentiable), unrolled.

    Returns output(state_N), or with `return_trajectory` the stacked
    output(state_n) for n = 0 .. N, shape `(N + 1,) + output's shape`.
    """
    output = output or (lambda state: state)

    def body(state, n):
        state = step(state, n)
        return state, output(state) if return_trajectory else None

    unroll = num_steps if num_steps <= MAX_UNROLLED_STEPS else 1
    final, states = jax.lax.scan(body, state0, jnp.arange(num_steps, dtype="int32"), unroll=max(unroll, 1))
    if not return_trajectory:
        return output(final)
    return jnp.concatenate([output(state0)[None], states], axis=0)


integrate_pathwise = functools.partial(generic.integrate_pathwise, loop=integrate)


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
