"""The JAX backend: an unrolled time loop, stateless sampling from JAX keys; the rest in keras.ops (`generic`)."""

import functools

import jax
import jax.numpy as jnp
import keras

from keras_nsde import optional
from keras_nsde.backend import generic, reversible
from keras_nsde.backend.generic import (  # noqa: F401
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


def integrate(step, state0, num_steps, return_trajectory=False, output=None, unrolled=None):
    """state_{n+1} = step(state_n, n) for n < num_steps, as a `lax.scan` (reverse-differentiable), unrolled.

    Returns output(state_N), or with `return_trajectory` the stacked
    output(state_n) for n = 0 .. N, shape `(N + 1,) + output's shape`.
    """
    output = output or (lambda state: state)

    def body(state, n):
        state = step(state, n)
        return state, output(state) if return_trajectory else None

    unrolled = num_steps <= MAX_UNROLLED_STEPS if unrolled is None else unrolled
    unroll = num_steps if unrolled else 1
    final, states = jax.lax.scan(body, state0, jnp.arange(num_steps, dtype="int32"), unroll=max(unroll, 1))
    if not return_trajectory:
        return output(final)
    return jnp.concatenate([output(state0)[None], states], axis=0)


integrate_pathwise = functools.partial(generic.integrate_pathwise, loop=integrate)

# A scan that XLA runs as a loop: memory independent of N (unrolled with noise, XLA:CPU's
# schedule keeps about two state-sized buffers per step alive: 25 / 86 MiB for N = 10 / 40 above).
rolled_integrate = functools.partial(integrate, unrolled=False)


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


def integrate_reversible(solver, terms, path, h0, t0, dt, num_steps, return_trajectory=False):
    """Reversible Heun with its O(1)-memory gradient: a `jax.custom_vjp` of h0 and the weights' values.

    jax.custom_vjp differentiates only its arguments, so the weights the
    vector fields read (`terms.variables`) go in explicitly and are read
    through a `keras.StatelessScope`; the backward pass is
    `keras_nsde.backend.reversible.backward` with `jax.vjp` per step.
    """
    variables = list(terms.variables)
    evaluate = solver.vector_fields(terms, path is not None)
    # The forward runs as a rolled scan (memory independent of N, ~10% slower on XLA:CPU); the
    # backward, whose per-step VJPs XLA:CPU runs 16x slower inside a loop, is unrolled up to
    # MAX_UNROLLED_STEPS (16x16x16x64 state, multiplicative noise, N = 10 / 40, 2026-11-25:
    # 0.45 / 1.63 s and 39 / 89 MiB of XLA temporaries, against autodiff's 0.50 / 6.07 s and 122 / 453 MiB;
    # a rolled backward keeps 23 MiB at any N but takes 7.4 s at N = 10).
    backward_loop = None if num_steps <= MAX_UNROLLED_STEPS else jax.lax.fori_loop

    def run_forward(h0, values):
        problem = (solver, terms, path, h0, t0, dt, num_steps, return_trajectory, rolled_integrate)
        return stateless(lambda: reversible.forward(*problem), variables)(*values)

    @jax.custom_vjp
    def solve(h0, values):
        return run_forward(h0, values)[0]

    def solve_forward(h0, values):
        output, final = run_forward(h0, values)
        return output, (final, values)

    def solve_backward(residuals, upstream):
        final, values = residuals

        def vjp(y_hat, t, phi):
            def fields_at(y_hat, values):
                fields = stateless(lambda: evaluate(y_hat, t), variables)(*values)
                return [field for field in fields if field is not None]

            fields, pullback = jax.vjp(fields_at, y_hat, values)
            grad_y_hat, grad_values = pullback(phi[: len(fields)])
            return fields, grad_y_hat, list(grad_values)

        grad_h0, grad_values = reversible.backward(
            solver, terms, path, final, upstream, t0, dt, num_steps, return_trajectory, vjp, backward_loop
        )
        return grad_h0, tuple(grad_values)

    solve.defvjp(solve_forward, solve_backward)
    return solve(h0, tuple(v.value for v in variables))


def weight_jvp(function, variables, direction):
    """(y, dy/dw v) for y = function() reading `variables`: jax.jvp with the weights passed explicitly."""
    return jax.jvp(stateless(function, variables), tuple(v.value for v in variables), tuple(direction))


def jacobian_products(function, x, v):
    """(J v, J^T J v) for J = d function / dx at x."""
    y, jv = jax.jvp(function, (x,), (v,))
    _, pullback = jax.vjp(function, x)
    return jv, pullback(jv)[0]


def compile_stateful(function, variables=()):
    """`function(*arrays)` under `jax.jit`, with the Keras `variables` it reads and updates passed as state.

    A jitted function must not read variables as constants (they would be
    frozen into the compiled code) nor update them (an update inside the
    trace would leak a tracer). So their values go in as arguments, are read
    through a `keras.StatelessScope`, and their values at the end (a
    `SeedGenerator`'s advanced state, a block's `nfe`) come out and are
    assigned after the call: consecutive calls draw fresh noise, as they do
    eagerly. Unchanged values are returned as they came in, which JAX forwards
    without a copy.
    """
    variables = list(variables)

    @jax.jit
    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            outputs = function(*args)
            updated = [scope.get_current_value(variable) for variable in variables]
        return outputs, updated

    def call(*args):
        outputs, updated = pure([variable.value for variable in variables], *args)
        for variable, value in zip(variables, updated):
            variable.assign(value)
        return outputs

    return call


def compile_function(function, input_shape, dtype, jit_compile=False, variables=()):
    """`function(x)` compiled by `jax.jit` (see `compile_stateful`), with or without `jit_compile`.

    XLA is JAX's only compiler, so `jit_compile` changes nothing here; a new
    input shape (a last, smaller batch) compiles once more.
    """
    return compile_stateful(function, variables)


def input_gradient(loss_fn, x):
    """d loss_fn(x) / dx for a scalar loss (the attacks' gradient hook)."""
    return jax.grad(loss_fn)(x)


# Dormand-Prince's stages per step: 7, the first shared with the last of the step before (FSAL).
DOPRI5_EVALUATIONS_PER_STEP = 6


def dormand_prince(drift_fn, h0, t0, t1, rtol, atol, times=None, variables=()):
    """Integrates dh = f(h, t) dt with diffrax's Dopri5 under a PID step-size controller (rtol, atol).

    The gradient is diffrax's `BacksolveAdjoint`: the continuous adjoint ODE
    solved backwards from t1, as TensorFlow Probability's on TensorFlow and
    torchdiffeq's `odeint_adjoint` on PyTorch, so the three backends give the
    same kind of gradient (accurate to the tolerances, memory independent of
    the number of steps). diffrax's default, `RecursiveCheckpointAdjoint`,
    differentiates the discrete steps instead (exact for the discrete solve,
    memory growing with the steps). The adjoint differentiates only the
    solve's arguments, so the drift's weights (`variables`) go in as `args`
    and are read through a `keras.StatelessScope`.

    Returns:
        (h(t1), or the states at `times` stacked on axis 0; NFE), NFE being the
        drift evaluations of the forward solve: one at t0, then six per
        attempted step (accepted or rejected), 1 + 6 * diffrax's `num_steps`.
    """
    diffrax = optional.require("diffrax", extra="dopri5-jax")
    variables = list(variables)

    def vector_field(t, h, values):
        return generic.stateless(lambda: drift_fn(h, jnp.asarray(t, h.dtype)), variables)(*values)

    saveat = diffrax.SaveAt(t1=True) if times is None else diffrax.SaveAt(ts=jnp.asarray(times, h0.dtype))
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Dopri5(),
        t0,
        t1,
        None,
        h0,
        args=tuple(variable.value for variable in variables),
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=diffrax.BacksolveAdjoint(),
    )
    states = solution.ys[-1] if times is None else solution.ys
    return states, 1 + DOPRI5_EVALUATIONS_PER_STEP * solution.stats["num_steps"]
