"""What every fixed-step solver's pure function shares: argument checks, the Brownian path, the loop."""

import tensorflow as tf

from keras_nsde.brownian import BrownianPath, GivenIncrements
from keras_nsde.solvers.loop import integrate


def solve_fixed_step(solver, terms, h0, dW, t0, t1, return_trajectory, num_steps):
    """Validates the arguments, wraps dW as a path, and runs `solver` from t0 to t1.

    Args:
        solver: a fixed-step `Solver`.
        terms: its `SDETerms`; a diffusion needs dW.
        h0: initial state.
        dW: increments `(num_steps,) + h0.shape`, a `BrownianPath`, or None (an ODE).
        num_steps: only needed when dW is None.
    """
    h0 = tf.convert_to_tensor(h0)
    if not h0.dtype.is_floating:
        raise ValueError(f"h0 must be a floating tensor. Received: h0.dtype={h0.dtype.name}")
    if t1 <= t0:
        raise ValueError(f"t1 must be greater than t0. Received: t0={t0}, t1={t1}")
    if dW is None:
        if terms.diffusion is not None:
            raise ValueError("dW is required when diffusion_fn is given. Received: dW=None")
        path = None
    else:
        path = dW if isinstance(dW, BrownianPath) else GivenIncrements(tf.cast(dW, h0.dtype))
        num_steps = path.num_steps
    if num_steps is None or num_steps < 1:
        raise ValueError(f"num_steps must be at least 1. Received: num_steps={num_steps}")
    dt = (t1 - t0) / num_steps
    step = solver.step_fn(terms, path, t0, dt)
    return integrate(step, solver.initial_state(terms, path, h0, t0), num_steps, return_trajectory, solver.output)


def step_time(h, n, t0, dt):
    """(t_n, dt) in h's dtype. tf.constant, not tf.cast: casting a Python float goes through float32."""
    dt_h = tf.constant(dt, h.dtype)
    return tf.constant(t0, h.dtype) + tf.cast(n, h.dtype) * dt_h, dt_h
