"""Primitives that are the same on several backends, written once (the JAX and PyTorch modules re-export them)."""

import math
from typing import NamedTuple

import keras
from keras import ops


def loop(body, carry, num_steps, record=None, lookahead=False, unroll=None):
    """(carry_N, records) for carry_{n+1} = body(carry_n, n), n = 0 .. num_steps - 1, as a Python loop.

    Args:
        body: `body(carry, n) -> carry`; a carry is a tensor or a nested structure of tensors.
        carry: carry_0.
        num_steps: N, a Python int.
        record: `record(carry) -> structure`; its values at carry_0 .. carry_{N-1}
            are stacked on a new first axis. None: records is None.
        lookahead: let a graph loop run iterations ahead (TensorFlow); a Python loop ignores it.
        unroll: unroll a graph loop (JAX); None lets the backend choose.
    """
    records = []
    for n in range(num_steps):
        if record is not None:
            records.append(record(carry))
        carry = body(carry, n)
    if record is None:
        return carry, None
    return carry, keras.tree.map_structure(lambda *values: ops.stack(values), *records)


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
