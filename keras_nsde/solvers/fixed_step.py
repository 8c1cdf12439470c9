"""What every fixed-step solver's pure function shares: argument checks, the Brownian path, the loop."""

import keras
from keras import ops

from keras_nsde import backend
from keras_nsde.brownian import BrownianPath, GivenIncrements


def solve_fixed_step(solver, terms, h0, dW, t0, t1, return_trajectory, num_steps):
    """Validates the arguments, wraps dW as a path, and runs `solver` from t0 to t1.

    Args:
        solver: a fixed-step `Solver`.
        terms: its `SDETerms`; a diffusion needs dW.
        h0: initial state.
        dW: increments `(num_steps,) + h0.shape`, a `BrownianPath`, or None (an ODE).
        num_steps: only needed when dW is None.
    """
    h0 = ops.convert_to_tensor(h0)
    if not keras.backend.is_float_dtype(h0.dtype):
        raise ValueError(f"h0 must be a floating tensor. Received: h0.dtype={keras.backend.standardize_dtype(h0.dtype)}")
    if t1 <= t0:
        raise ValueError(f"t1 must be greater than t0. Received: t0={t0}, t1={t1}")
    if dW is None:
        if terms.diffusion is not None:
            raise ValueError("dW is required when diffusion_fn is given. Received: dW=None")
        path = None
    else:
        path = dW if isinstance(dW, BrownianPath) else GivenIncrements(ops.cast(dW, h0.dtype))
        num_steps = path.num_steps
    if num_steps is None or num_steps < 1:
        raise ValueError(f"num_steps must be at least 1. Received: num_steps={num_steps}")
    dt = (t1 - t0) / num_steps
    step = solver.step_fn(terms, path, t0, dt)
    state = solver.initial_state(terms, path, h0, t0)
    return backend.get().integrate(step, state, num_steps, return_trajectory, solver.output)


def step_time(h, n, t0, dt):
    """(t_n, dt) in h's dtype; converted, not cast: casting a Python float would go through float32."""
    dt_h = ops.convert_to_tensor(dt, dtype=h.dtype)
    return ops.convert_to_tensor(t0, dtype=h.dtype) + ops.cast(n, h.dtype) * dt_h, dt_h
