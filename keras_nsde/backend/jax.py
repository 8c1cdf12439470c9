"""The JAX backend: an unrolled `lax.scan` time loop, `jax.custom_vjp` custom gradients, stateless JAX keys."""

import jax
import jax.numpy as jnp
import keras

from keras_nsde import optional
from keras_nsde.backend import jax_same_conv
from keras_nsde.backend.generic import (  # noqa: F401
    Records,
    Weights,
    random_shape,
    size,
    stateless,
    trace,
)

# Up to this many iterations a loop is unrolled: XLA:CPU runs convolutions (and per-step VJPs)
# inside a while loop many times slower than the same code unrolled (docs/benchmarks.md).
MAX_UNROLLED_STEPS = 100


def loop(body, carry, num_steps, record=None, lookahead=False, unroll=None, stack=True):
    """(carry_N, records) for carry_{n+1} = body(carry_n, n), as a reverse-differentiable `lax.scan`.

    See `keras_nsde.backend.generic.loop`. Unrolled up to MAX_UNROLLED_STEPS
    iterations unless `unroll=False` (a rolled scan keeps memory independent
    of N where XLA's schedule of an unrolled one would keep per-step buffers).
    A scan stacks what it records in any case: `stack=False` returns the
    stacked records as `StackedRecords`.
    """

    def scan_body(carry, n):
        return body(carry, n), (record(carry) if record is not None else None)

    unrolled = num_steps <= MAX_UNROLLED_STEPS if unroll is None else unroll
    final, records = jax.lax.scan(
        scan_body, carry, jnp.arange(num_steps, dtype="int32"), unroll=max(num_steps if unrolled else 1, 1)
    )
    if record is None:
        return final, None
    records = jax.tree.map(lambda stacked, last: jnp.concatenate([stacked, last[None]]), records, record(final))
    return final, (records if stack else StackedRecords(records))


@jax.tree_util.register_pytree_node_class
class StackedRecords(Records):
    """`Records` stacked on a first axis, a pytree (a custom_vjp's residuals may hold it)."""

    def __init__(self, stacked):
        self.stacked = stacked
        super().__init__(lambda n: jax.tree.map(lambda values: values[n], stacked))

    def tree_flatten(self):
        return (self.stacked,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0])


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
        # The backward pass recomputes states, reading the weights: through the scope too, because
        # outside the forward's scope a jitted Keras trainer may hold no value in the variables.
        grad_h0, grad_weights = stateless(
            lambda: backward(residuals, upstream, Weights(variables, list(values))), variables
        )(*values)
        return grad_h0, tuple(grad_weights)

    function.defvjp(function_forward, function_backward)
    return lambda h0: function(h0, tuple(v.value for v in variables))


def vjp(function, x, weights, cotangent):
    """(function(x), cotangent . d function/dx, [cotangent . d function/dw]) by `jax.vjp`, weights passed explicitly.

    The function is traced with `jax_same_conv.canonical_gradients()`: the
    backward loops that call `vjp` are rolled, where XLA:CPU runs only
    canonical convolutions fast.
    """

    def explicit(x, values):
        return stateless(lambda: function(x), weights.variables)(*values)

    with jax_same_conv.canonical_gradients():
        outputs, pullback = jax.vjp(explicit, x, tuple(weights.values))
    grad_x, grad_values = pullback(cotangent)
    return outputs, grad_x, list(grad_values)


def accelerated(op, x):
    """JAX's faster drop-in for `op` on x, or None (then the keras.ops version runs).

    "same_conv2d": within a reverse-mode `vjp` on a CPU, the convolution whose
    gradients XLA:CPU runs with Eigen inside rolled loops (`jax_same_conv`).
    """
    if op == "same_conv2d" and jax_same_conv.enabled():
        return jax_same_conv.same_conv2d
    return None


def seed(values):
    """A per-call seed as a raw JAX key, uint32 of shape (2,)."""
    return jnp.asarray(values).astype("uint32")


def fold_in(seed, n):
    return jax.random.fold_in(seed, n)


def uniform(shape, seed, dtype):
    return jax.random.uniform(seed, tuple(shape), dtype=dtype)


def normal(shape, seed, dtype):
    """Standard normals of `shape`, a function of the key alone (`jax.random.normal`)."""
    return jax.random.normal(seed, tuple(shape), dtype=dtype)


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
        return stateless(lambda: drift_fn(h, jnp.asarray(t, h.dtype)), variables)(*values)

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
