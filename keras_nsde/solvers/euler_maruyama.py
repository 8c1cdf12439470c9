"""Euler-Maruyama: h_{n+1} = h_n + f(h_n, t_n) dt + G(h_n, t_n, f) * dW_n."""

import keras

from keras_nsde.solvers.base import Solver
from keras_nsde.solvers.functional import solve_functional
from keras_nsde.solvers.problem import SDETerms


@keras.saving.register_keras_serializable(package="keras_nsde")
class EulerMaruyama(Solver):
    """Euler-Maruyama (Itô): strong order 1/2, weak order 1; strong order 1 for additive noise."""

    name = "euler_maruyama"
    strong_order = 0.5
    weak_order = 1.0

    def step(self, problem, h, n):
        """h_{n+1} = h + f dt + G * dW_n (paper Eq. 3; G * dW elementwise, diagonal noise)."""
        t, dt = problem.time(n, h.dtype)
        f = problem.terms.drift(h, t)
        h_next = h + f * dt
        if problem.noisy:
            h_next = h_next + problem.terms.diffusion(h, t, f) * problem.increment(n)
        return h_next


def euler_maruyama(drift_fn, diffusion_fn, h0, dW, t0=0.0, t1=1.0, return_trajectory=False, num_steps=None):
    """Integrates dh = f(h, t) dt + G(h, t, f) dB from t0 to t1 (paper Eq. 3).

    A pure function: it samples nothing; the Brownian increments come in.

    Args:
        drift_fn: `f(h, t)` returning a tensor with h's shape.
        diffusion_fn: `G(h, t, f)` returning a tensor with h's shape, or None
            for an ODE (then `dW` must be None and `num_steps` given).
        h0: initial state, any shape, float32 or float64 (or float16).
        dW: increments of shape `(num_steps,) + h0.shape`, each of variance
            (t1 - t0) / num_steps, or a `keras_nsde.brownian.BrownianPath`.
        t0: start of the integration interval.
        t1: its end, t1 > t0.
        return_trajectory: return all states, shape `(num_steps + 1,) + h0.shape`.
        num_steps: needed when `dW` is None; otherwise it must match dW.

    Returns:
        h at t1 (h0's shape and dtype), or the trajectory.
    """
    terms = SDETerms(drift_fn, diffusion_fn)
    return solve_functional(EulerMaruyama(), terms, h0, dW, t0, t1, return_trajectory, num_steps)
