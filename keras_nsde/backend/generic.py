"""Backend operations written once in keras.ops (the JAX and PyTorch modules use them)."""

import math

import keras
from keras import ops


def integrate(step, state0, num_steps, return_trajectory=False, output=None):
    """Applies state_{n+1} = step(state_n, n) for n = 0 .. num_steps - 1 (see the TensorFlow twin).

    `keras.ops.fori_loop` with Python bounds (JAX: a reverse-differentiable
    scan); the trajectory comes from `keras.ops.scan`.
    """
    output = output or (lambda state: state)
    if not return_trajectory:
        return output(ops.fori_loop(0, num_steps, lambda n, state: step(state, n), state0))

    def body(state, n):
        state = step(state, n)
        return state, output(state)

    _, states = ops.scan(body, state0, xs=ops.arange(num_steps, dtype="int32"), length=num_steps)
    return ops.concatenate([ops.expand_dims(output(state0), 0), states], axis=0)


def integrate_pathwise(step, h0, num_steps, return_trajectory=False, checkpoints=None, loop=integrate):
    """Runs h_{n+1} = step(h_n, n) and differentiates it by recomputation: the pathwise gradient.

    The backward pass propagates a_n = a_{n+1} dPhi_n/dh and sums
    a_{n+1} dPhi_n/dw on the same Brownian path (the TensorFlow twin's
    docstring has the derivation), keeping only C checkpoints of h: the loop
    runs in segments of K = ceil(N / C) steps, each under `keras.remat`
    (`jax.checkpoint`, `torch.utils.checkpoint`), which stores a segment's
    input and recomputes its steps when the gradient needs them. C = None
    picks ceil(sqrt(N)); with `return_trajectory` every state is kept
    (K = 1). The gradients equal autodiff's up to rounding. `loop` is the
    backend's `integrate`.
    """
    if return_trajectory:
        segment = 1
    else:
        kept = math.ceil(math.sqrt(num_steps)) if checkpoints is None else checkpoints
        segment = math.ceil(num_steps / min(max(kept, 1), num_steps))

    def run_steps(length):
        def run(state, start):
            return loop(lambda h, i: step(h, start + i), state, length)

        return keras.remat(run)

    full_segments, rest = divmod(num_steps, segment)
    run_segment = run_steps(segment)

    def segment_step(state, index):
        return run_segment(state, index * segment)

    state = loop(segment_step, h0, full_segments, return_trajectory)
    if rest:  # only without the trajectory (K = 1 otherwise)
        state = run_steps(rest)(state, full_segments * segment)
    return state


def random_shape(x):
    return tuple(x.shape)


def size(shape):
    return math.prod(shape)


def group_norm(x, gamma, beta, groups, epsilon, relu=False):
    """y = act((x - mean_g) / sqrt(var_g + eps) * gamma + beta) on `(batch, H, W, C)`, statistics per example and group.

    The same function as the TensorFlow twin, in the same passes: per-channel
    sums of x and x^2 over (H, W), contiguous reductions, give each group's
    mean and variance (E[x^2] - E[x]^2, float32 statistics for half-precision
    x); with gamma and beta they fold into a per-(example, channel) scale and
    shift, so y = act(x * scale + shift) is one elementwise pass.
    Differentiated by autodiff (every order). The PyTorch-backend CIFAR-10
    step took 2.96 s with one reduction over (H, W, channels of a group) and
    1.83 s with `torch.nn.functional.group_norm` on a channels-last view,
    1.58 s with this (2026-11-25, 2-core CPU).
    """
    batch, channels = ops.shape(x)[0], x.shape[-1]
    statistics = "float32" if ops.dtype(x) in ("float16", "bfloat16") else ops.dtype(x)
    wide = ops.cast(x, statistics)
    count = x.shape[1] * x.shape[2] * (channels // groups)

    def group_means(channel_sums):  # (batch, C) -> (batch, groups, 1)
        return ops.sum(ops.reshape(channel_sums, (batch, groups, -1)), axis=-1, keepdims=True) / count

    mean = group_means(ops.sum(wide, axis=(1, 2)))
    variance = ops.maximum(group_means(ops.sum(ops.square(wide), axis=(1, 2))) - ops.square(mean), 0.0)
    grouped_gamma = ops.reshape(ops.cast(gamma, statistics), (groups, -1))
    scale = ops.rsqrt(variance + epsilon) * grouped_gamma  # (batch, groups, C / groups)
    shift = ops.reshape(ops.cast(beta, statistics), (groups, -1)) - mean * scale
    y = wide * ops.reshape(scale, (batch, 1, 1, channels)) + ops.reshape(shift, (batch, 1, 1, channels))
    return ops.cast(ops.relu(y) if relu else y, x.dtype)


def same_conv2d(x, kernel):
    """conv2d(x, kernel), stride 1, 'same' zero padding."""
    return ops.conv(x, kernel, strides=1, padding="same")


def executing_eagerly(x):
    return True


def compile_function(function, input_shape, dtype, jit_compile=False, variables=()):
    """`function` itself, run eagerly, with or without `jit_compile` (PyTorch).

    Eager is what Keras' own PyTorch trainer runs by default. `torch.compile`
    of the test-time ensemble does run, but breaks its graph at every step's
    seeded `torch.Generator` (the noise) and at Keras' layer bookkeeping,
    reaches its recompilation limit and spends minutes compiling even the
    digits model, for no gain; so `jit_compile=True` is accepted and runs
    eagerly as well.
    """
    return function


def stateless(function, variables):
    """`function()` as a function of the values of `variables`, for transformations that take them as arguments."""

    def call(*values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return function()

    return call


def trace(function):
    """`function` as it is: run eagerly (JAX and PyTorch)."""
    return function


def compile_stateful(function, variables=()):
    """`function` itself, run eagerly (PyTorch): it reads and updates its Keras `variables` directly."""
    return function
