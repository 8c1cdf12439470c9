"""Euler-Maruyama: h_{n+1} = h_n + f(h_n, t_n) dt + G(h_n, t_n, f) * dW_n."""

import tensorflow as tf

from keras_nsde.brownian import BrownianPath, GivenIncrements
from keras_nsde.solvers.loop import integrate

STRONG_ORDER = 0.5
WEAK_ORDER = 1.0


def euler_maruyama_step(drift_fn, diffusion_fn, path, t0, dt):
    """One Euler-Maruyama step as a function `step(h, n) -> h_{n+1}`.

    Args:
        drift_fn: `f(h, t)`, a tensor with h's shape.
        diffusion_fn: `G(h, t, f)`, a tensor with h's shape (diagonal noise:
            the step uses G * dW elementwise). Ignored when `path` is None.
        path: a `BrownianPath`, or None for the noiseless (ODE) Euler step.
        t0: start time; step n is taken at t_n = t0 + n dt.
        dt: step size.
    """

    def step(h, n):
        # tf.constant, not tf.cast: casting a Python float goes through float32.
        dt_h = tf.constant(dt, h.dtype)
        t = tf.constant(t0, h.dtype) + tf.cast(n, h.dtype) * dt_h
        f = drift_fn(h, t)
        h_next = h + f * dt_h
        if path is not None:
            h_next = h_next + diffusion_fn(h, t, f) * path.increment(n)
        return h_next

    return step


def euler_maruyama(
    drift_fn,
    diffusion_fn,
    h0,
    dW,
    t0=0.0,
    t1=1.0,
    return_trajectory=False,
    num_steps=None,
):
    """Integrates dh = f(h, t) dt + G(h, t, f) dB from t0 to t1 (paper Eq. 3).

    A pure function: it samples nothing; the Brownian increments come in.

    Args:
        drift_fn: `f(h, t)` returning a tensor with h's shape.
        diffusion_fn: `G(h, t, f)` returning a tensor with h's shape, or None
            for an ODE (then `dW` must be None and `num_steps` given).
        h0: initial state, any shape, float32 or float64 (or float16).
        dW: increments of shape `(num_steps,) + h0.shape`, each of variance
            (t1 - t0) / num_steps, or a `keras_nsde.brownian.BrownianPath`.
        t0, t1: integration interval, t1 > t0.
        return_trajectory: return all states, shape `(num_steps + 1,) + h0.shape`.
        num_steps: only needed when `dW` is None.

    Returns:
        h at t1 (h0's shape and dtype), or the trajectory.
    """
    h0 = tf.convert_to_tensor(h0)
    if not h0.dtype.is_floating:
        raise ValueError(f"h0 must be a floating tensor. Received: h0.dtype={h0.dtype.name}")
    if t1 <= t0:
        raise ValueError(f"t1 must be greater than t0. Received: t0={t0}, t1={t1}")
    if dW is None:
        if diffusion_fn is not None:
            raise ValueError("dW is required when diffusion_fn is given. Received: dW=None")
        path = None
    else:
        path = dW if isinstance(dW, BrownianPath) else GivenIncrements(tf.cast(dW, h0.dtype))
        num_steps = path.num_steps
    if num_steps is None or num_steps < 1:
        raise ValueError(f"num_steps must be at least 1. Received: num_steps={num_steps}")
    dt = (t1 - t0) / num_steps
    step = euler_maruyama_step(drift_fn, diffusion_fn, path, t0, dt)
    return integrate(step, h0, num_steps, return_trajectory)
