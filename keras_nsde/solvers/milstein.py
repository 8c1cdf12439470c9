"""Milstein: Euler-Maruyama plus the Ito correction 1/2 G dG/dh (dW^2 - dt), strong order 1."""

import keras

from keras_nsde.solvers.base import Solver
from keras_nsde.solvers.functional import solve_functional
from keras_nsde.solvers.problem import SDETerms


@keras.saving.register_keras_serializable(package="keras_nsde")
class Milstein(Solver):
    """Milstein (Itô) for diagonal noise, weak order 1:

        h_{n+1} = h + f dt + G dW + 1/2 G G' (dW^2 - dt),   G' = dG_i/dh_i (elementwise).

    Where the diffusion gives no closed-form derivative (`Diffusion.derivative`
    returns None) it uses the derivative-free (Runge-Kutta) form of Kloeden &
    Platen (eq. 11.1.5), one more drift and diffusion evaluation per step:

        h~ = h + f dt + G sqrt(dt),
        h_{n+1} = h + f dt + G dW + (G(h~) - G(h)) (dW^2 - dt) / (2 sqrt(dt)).

    Both are strong order 1 when each G_i depends on h_i alone (additive,
    multiplicative, elementwise user diffusions). When G_i depends on other
    components too (the dropout diffusion G = sigma f(h)), strong order 1 would
    need the Levy areas of the Brownian motion, which are not simulated: the
    step stays consistent but its strong order is 1/2 in general.
    """

    name = "milstein"
    strong_order = 1.0
    weak_order = 1.0

    def step(self, problem, h, n):
        terms = problem.terms
        t, dt = problem.time(n, h.dtype)
        f = terms.drift(h, t)
        h_next = h + f * dt
        if not problem.noisy:
            return h_next
        g, dW = terms.diffusion(h, t, f), problem.increment(n)
        h_next = h_next + g * dW
        g_prime = terms.diffusion_derivative(h, t, f)
        if g_prime is not None:
            return h_next + 0.5 * g * g_prime * (dW * dW - dt)
        sqrt_dt = dt**0.5
        support = h + f * dt + g * sqrt_dt
        g_support = terms.diffusion(support, t, terms.drift(support, t))
        return h_next + (g_support - g) * (dW * dW - dt) / (2.0 * sqrt_dt)


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
    """Integrates dh = f dt + G dB with the Milstein scheme (see `Milstein`).

    Arguments and returns as `euler_maruyama`, plus `diffusion_derivative_fn`
    (`G'(h, t, f)` = dG_i/dh_i; None selects the derivative-free form).
    """
    terms = SDETerms(drift_fn, diffusion_fn, diffusion_derivative_fn)
    return solve_functional(Milstein(), terms, h0, dW, t0, t1, return_trajectory, num_steps)
