"""Argument checks of the public solve functions (`solve` and the pure solvers), raised before or at tracing.

A vector field that returns the wrong shape would broadcast against the
state without a word (a drift of shape (batch, 1) moves every component
alike; a diffusion of shape (d,) shares one noise scale across the batch),
so the fields are wrapped to check their static shapes on every call: a
Python-level check, free once traced.
"""

import keras
from keras import ops

from keras_nsde import validation
from keras_nsde.brownian import BrownianPath, GivenIncrements
from keras_nsde.solvers.problem import Grid, SaveAt, SDETerms


def floating_state(h0, name="h0"):
    """h0 as a floating tensor (a tensor, symbolic ones included, as it is), or a ValueError naming its dtype."""
    if not (ops.is_tensor(h0) or isinstance(h0, keras.KerasTensor)):
        h0 = ops.convert_to_tensor(h0)
    if not keras.backend.is_float_dtype(h0.dtype):
        raise ValueError(f"{name} must be a floating tensor. Received: {name}.dtype={keras.backend.standardize_dtype(h0.dtype)}")
    return h0


def checked_terms(terms, names=("drift", "diffusion", "derivative")):
    """`terms` with each field checked to return a tensor of the state's shape (`names` for the messages)."""
    if not isinstance(terms, SDETerms):
        raise ValueError(
            f"terms must be a keras_nsde.solvers.SDETerms(drift, diffusion, derivative, variables). Received: terms={terms!r}"
        )
    drift_name, diffusion_name, derivative_name = names
    validation.function(drift_name, terms.drift)
    for name, field in ((diffusion_name, terms.diffusion), (derivative_name, terms.derivative)):
        if field is not None:
            validation.function(name, field)

    def drift(h, t):
        return _state_shaped(drift_name, terms.drift(h, t), h)

    def diffusion(h, t, f):
        return _state_shaped(diffusion_name, terms.diffusion(h, t, f), h)

    def derivative(h, t, f):
        value = terms.derivative(h, t, f)
        return None if value is None else _state_shaped(derivative_name, value, h)

    return SDETerms(
        drift,
        None if terms.diffusion is None else diffusion,
        None if terms.derivative is None else derivative,
        terms.variables,
    )


def check_problem(path, grid, saveat, h0):
    """The path, grid and outputs of `solve`: of the right kinds, the path's steps and shape those of grid and h0."""
    if not isinstance(grid, Grid):
        raise ValueError(f"grid must be a keras_nsde.solvers.Grid. Received: grid={grid!r}")
    if saveat is not None and not isinstance(saveat, SaveAt):
        raise ValueError(f"saveat must be a keras_nsde.solvers.SaveAt or None. Received: saveat={saveat!r}")
    if path is None:
        return
    if not isinstance(path, BrownianPath):
        raise ValueError(
            "path must be a keras_nsde.brownian.BrownianPath (for given increments, "
            f"brownian.GivenIncrements(dW)) or None. Received: path={path!r}"
        )
    if path.num_steps is not None and path.num_steps != grid.num_steps:
        raise ValueError(
            f"path must have one increment per grid step ({grid.num_steps}). "
            f"Received: path with num_steps={path.num_steps} for {grid!r}"
        )
    if isinstance(path, GivenIncrements):
        increments_shape(path.dW, h0, "path")


def increments_shape(dW, h0, name="dW"):
    """A ValueError unless dW (the increments of `name`) has shape (num_steps,) + h0.shape (no broadcasting)."""
    shape, state_shape = tuple(dW.shape), tuple(h0.shape)
    if len(shape) != len(state_shape) + 1 or not _same_static_shape(shape[1:], state_shape):
        received = f"{name} with shape {shape}" if name == "dW" else f"{name} with increments of shape {shape}"
        raise ValueError(
            f"{name} must have increments of shape (num_steps,) + h0.shape = (num_steps,) + {state_shape}: one "
            f"increment per step for every element of the state. Received: {received}"
        )


def _state_shaped(name, value, h):
    shape = getattr(value, "shape", None)
    if shape is None or not _same_static_shape(tuple(shape), tuple(h.shape)):
        received = f"{name} returned a value of shape {tuple(shape)}" if shape is not None else f"{name} returned {value!r}"
        raise ValueError(
            f"{name} must return a tensor with the state's shape {tuple(h.shape)} (no broadcasting). Received: {received}"
        )
    return value


def _same_static_shape(a, b):
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))
