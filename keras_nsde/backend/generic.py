"""Primitives that are the same on several backends, written once (the JAX and PyTorch modules re-export them)."""

import math
from typing import NamedTuple

import keras
from keras import ops


def loop(body, carry, num_steps, record=None, lookahead=False, unroll=None, stack=True):
    """(carry_N, records) for carry_{n+1} = body(carry_n, n), n = 0 .. num_steps - 1, as a Python loop.

    Args:
        body: `body(carry, n) -> carry`; a carry is a tensor or a nested structure of tensors.
        carry: carry_0.
        num_steps: N, a Python int.
        record: `record(carry) -> structure`; its values at carry_0 .. carry_N
            (N + 1 of them, the final carry's last) are stacked on a new first
            axis. None: records is None.
        lookahead: let a graph loop run iterations ahead (TensorFlow); a Python loop ignores it.
        unroll: unroll a graph loop (JAX); None lets the backend choose.
        stack: False returns the records as `Records`, read one at a time
            (`records[n]`), without copying them into one stacked tensor: a
            backward pass that only reads them back keeps one copy (a stack
            is a second copy of all of them, held while the first is freed).
    """
    records = []
    for n in range(num_steps):
        if record is not None:
            records.append(record(carry))
        carry = body(carry, n)
    if record is None:
        return carry, None
    records.append(record(carry))
    if not stack:
        return carry, Records(records.__getitem__)
    return carry, keras.tree.map_structure(lambda *values: ops.stack(values), *records)


class Records:
    """The values `loop(..., record=record, stack=False)` recorded: `records[n]` is record(carry_n), n = 0 .. N.

    `n` may be a loop index of the backend's `loop` (a Python int on the
    eager backends, a tensor in a graph loop).
    """

    def __init__(self, read):
        self.read = read

    def __getitem__(self, n):
        return self.read(n)


class Weights(NamedTuple):
    """The weights a custom backward pass differentiates: Keras variables and the values they held.

    JAX and PyTorch differentiate values passed in explicitly; the functions
    read the variables, so `vjp` evaluates them with each variable mapped to
    its value (`stateless`).
    """

    variables: list
    values: list

    @property
    def shapes(self):
        return [tuple(value.shape) for value in self.values]

    @property
    def dtypes(self):
        return [keras.backend.standardize_dtype(value.dtype) for value in self.values]


def stateless(function, variables):
    """`function()` as a function of the values of `variables`, for transformations that take them as arguments."""

    def call(*values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return function()

    return call


def box_muller(uniforms, size, shape):
    """Standard normals of `shape` from uniforms u, v = uniforms[0], uniforms[1] in [0, 1), each of (size + 1) // 2.

    With r = sqrt(-2 log(1 - u)) and a = 2 pi v, r cos(a) and r sin(a) are two
    independent standard normals (Box-Muller): one pair of uniforms per two
    normals, elementwise ops only. `size` may be a tensor (a dynamic shape).
    """
    u, v = uniforms[0], uniforms[1]
    radius = ops.sqrt(-2.0 * ops.log1p(-u))  # 1 - u in (0, 1]: finite
    angle = v * (2.0 * math.pi)
    normals = ops.concatenate([radius * ops.cos(angle), radius * ops.sin(angle)], axis=0)
    if not (isinstance(size, int) and size % 2 == 0):
        normals = normals[:size]
    return ops.reshape(normals, shape)


def random_shape(x):
    return tuple(x.shape)


def size(shape):
    return math.prod(shape)


def executing_eagerly(x):
    return True


def check_dtype(dtype):
    """Raises ValueError if the backend cannot compute in `dtype` (every float dtype works here)."""


def accelerated(op, x):
    """No faster implementation of `op` than the keras.ops one on this backend."""
    return None


def trace(function):
    """`function` as it is: run eagerly."""
    return function


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


def compile_stateful(function, variables=()):
    """`function` itself, run eagerly (PyTorch): it reads and updates its Keras `variables` directly."""
    return function
