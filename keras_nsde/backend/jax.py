"""The JAX backend: an unrolled `lax.scan` time loop, `jax.custom_vjp` custom gradients, stateless JAX keys."""

import jax
import jax.numpy as jnp

from keras_nsde.backend.generic import (  # noqa: F401
    Weights,
    accelerated,
    compile_function,
    random_shape,
    size,
    stateless,
    trace,
)

# Up to this many iterations a loop is unrolled: XLA:CPU runs convolutions (and per-step VJPs)
# inside a while loop many times slower than the same code unrolled (docs/benchmarks.md).
MAX_UNROLLED_STEPS = 100


def loop(body, carry, num_steps, record=None, lookahead=False, unroll=None):
    """(carry_N, records) for carry_{n+1} = body(carry_n, n), as a reverse-differentiable `lax.scan`.

    See `keras_nsde.backend.generic.loop`. Unrolled up to MAX_UNROLLED_STEPS
    iterations unless `unroll=False` (a rolled scan keeps memory independent
    of N where XLA's schedule of an unrolled one would keep per-step buffers).
    """

    def scan_body(carry, n):
        return body(carry, n), (record(carry) if record is not None else None)

    unrolled = num_steps <= MAX_UNROLLED_STEPS if unroll is None else unroll
    final, records = jax.lax.scan(
        scan_body, carry, jnp.arange(num_steps, dtype="int32"), unroll=max(num_steps if unrolled else 1, 1)
    )
    return final, records


def custom_vjp(forward, backward, variables):
    """A function of h0 whose backward pass is `backward`, as a `jax.custom_vjp` of h0 and the weights' values.

    jax.custom_vjp differentiates only its arguments, so the values of the
    weights the function reads (`variables`) go in explicitly and the
    variables are read through a `keras.StatelessScope`.
    `forward(h0) -> (output, residuals)`;
    `backward(residuals, upstream, weights) -> (dL/dh0, [dL/dw per weight])`.
    """
    variables = list(variables)

    def run_forward(h0, values):
        return stateless(lambda: forward(h0), variables)(*values)

    @jax.custom_vjp
    def function(h0, values):
        return run_forward(h0, values)[0]

    def function_forward(h0, values):
        output, residuals = run_forward(h0, values)
        return output, (residuals, values)

    def function_backward(saved, upstream):
        residuals, values = saved
        grad_h0, grad_weights = backward(residuals, upstream, Weights(variables, list(values)))
        return grad_h0, tuple(grad_weights)

    function.defvjp(function_forward, function_backward)
    return lambda h0: function(h0, tuple(v.value for v in variables))


def vjp(function, x, weights, cotangent):
    """(function(x), cotangent . d function/dx, [cotangent . d function/dw]) by `jax.vjp`, weights passed explicitly."""

    def explicit(x, values):
        return stateless(lambda: function(x), weights.variables)(*values)

    outputs, pullback = jax.vjp(explicit, x, tuple(weights.values))
    grad_x, grad_values = pullback(cotangent)
    return outputs, grad_x, list(grad_values)


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


def check_dtype(dtype):
    """float64 needs JAX's 64-bit mode; without it JAX would compute in float32 without a word."""
    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "A float64 SDEBlock on JAX needs JAX's 64-bit mode: call jax.config.update('jax_enable_x64', True) "
            "(or use `with jax.enable_x64(True):`) before building the model, or use float32. Received: dtype=float64"
        )


def weight_jvp(function, variables, direction):
    """(y, dy/dw v) for y = function() reading `variables`: jax.jvp with the weights passed explicitly."""
    return jax.jvp(stateless(function, variables), tuple(v.value for v in variables), tuple(direction))


def jacobian_products(function, x, v):
    """(J v, J^T J v) for J = d function / dx at x."""
    y, jv = jax.jvp(function, (x,), (v,))
    _, pullback = jax.vjp(function, x)
    return jv, pullback(jv)[0]
