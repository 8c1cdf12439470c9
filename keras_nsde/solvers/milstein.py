"""Milstein: Euler-Maruyama plus the Ito correction 1/2 G dG/dh (dW^2 - dt), strong order 1."""

import keras

from keras_nsde.solvers.base import SDETerms, Solver
from keras_nsde.solvers.fixed_step import solve_fixed_step, step_time


def milstein_step(drift_fn, diffusion_fn, path, t0, dt, diffusion_derivative_fn=None):
    """One Milstein step for diagonal noise, `step(h, n) -> h_{n+1}`:

        h_{n+1} = h + f dt + G dW + 1/2 G G' (dW^2 - dt),   G' = dG_i/dh_i (elementwise).

    Without `diffusion_derivative_fn` it uses the derivative-free (Runge-Kutta)
    form of Kloeden & Platen (eq. 11.1.5), one more drift and diffusion
    evaluation per step:

        h~ = h + f dt + G sqrt(dt),
        h_{n+1} = h + f dt + G dW + (G(h~) - G(h)) (dW^2 - dt) / (2 sqrt(dt)).

    Both are strong order 1 when each G_i depends on h_i alone (additive,
    multiplicative, elementwise user diffusions). When G_i depends on other
    components too (the dropout diffusion G = sigma f(h)), strong order 1 would
    need the Levy areas of the Brownian motion, which are not simulated: the
    step stays consistent but its strong order is 1/2 in general.

    Args:
        drift_fn, diffusion_fn, path, t0, dt: as for `euler_maruyama_step`.
        diffusion_derivative_fn: `G'(h, t, f)`, the elementwise dG_i/dh_i, or
            None (or a function returning None) for the derivative-free form.
    """

    def step(h, n):
        t, dt_h = step_time(h, n, t0, dt)
        f = drift_fn(h, t)
        h_next = h + f * dt_h
        if path is None:
            return h_next
        g = diffusion_fn(h, t, f)
        dW = path.increment(n)
        h_next = h_next + g * dW
        g_prime = diffusion_derivative_fn(h, t, f) if diffusion_derivative_fn is not None else None
        if g_prime is not None:
            return h_next + 0.5 * g * g_prime * (dW * dW - dt_h)
        sqrt_dt = dt_h**0.5
        support = h + f * dt_h + g * sqrt_dt
        g_support = diffusion_fn(support, t, drift_fn(support, t))
        return h_next + (g_support - g) * (dW * dW - dt_h) / (2.0 * sqrt_dt)

    return step


@keras.saving.register_keras_serializable(package="keras_nsde")
class Milstein(Solver):
    """Milstein (Itô): strong order 1 for elementwise diffusions (see `milstein_step`), weak order 1."""

    name = "milstein"
    strong_order = 1.0
    weak_order = 1.0

    def step_fn(self, terms, path, t0, dt):
        return milstein_step(terms.drift, terms.diffusion, path, t0, dt, terms.derivative)


def milstein(
    drift_fn,
    diffusion_fn,
    h0,
    dW,
    t0=0.0,
    t1=1.0,
    return_trajectory=False,
    num_steps=None,
    diffusion_derivative_fn=None,
):
    """Integrates dh = f dt + G dB with the Milstein scheme (see `milstein_step`).

    Arguments and returns as `euler_maruyama`, plus `diffusion_derivative_fn`
    (`G'(h, t, f)` = dG_i/dh_i; None selects the derivative-free form).
    """

    terms = SDETerms(drift_fn, diffusion_fn, diffusion_derivative_fn)
    return solve_fixed_step(Milstein(), terms, h0, dW, t0, t1, return_trajectory, num_steps)
