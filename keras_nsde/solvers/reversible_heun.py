"""Reversible Heun (Kidger, Foster, Li & Lyons, 2021): an algebraically reversible SDE solver.

The state (y_n, y^_n, f_n, g_n) carries (f_n, g_n) = (f(y^_n, t_n), G(y^_n, t_n)):

    y^_{n+1} = 2 y_n - y^_n + f_n dt + g_n dW_n
    (f_{n+1}, g_{n+1}) = (f, G)(y^_{n+1}, t_{n+1})
    y_{n+1}  = y_n + (f_n + f_{n+1}) dt / 2 + (g_n + g_{n+1}) dW_n / 2

with y^_0 = y_0: one drift and one diffusion evaluation per step. Run
backwards, the same equations give state n from state n + 1 exactly (up to
float rounding), with one evaluation at y^_n:

    y^_n = 2 y_{n+1} - y^_{n+1} - f_{n+1} dt - g_{n+1} dW_n
    (f_n, g_n) = (f, G)(y^_n, t_n)
    y_n  = y_{n+1} - (f_n + f_{n+1}) dt / 2 - (g_n + g_{n+1}) dW_n / 2

so a backward pass can rebuild every state from the last one
(`keras_nsde.gradients.Reversible`) instead of storing them.

It converges to the *Stratonovich* solution: strong order 1/2 for general
noise, 1 for commutative noise (diagonal noise whose G_i depends on h_i alone:
additive, multiplicative) and for additive noise (where Itô and Stratonovich
agree); weak order 1 (diffrax's solver table; tests/test_reversible_heun.py
fits the orders, docs/measurements.md has the figures). For
elementwise diffusions with a known derivative (`Diffusion.derivative`),
`interpretation="ito"` solves the Itô SDE dh = f dt + G dW of Euler-Maruyama
through its Stratonovich form, drift f - G G' / 2.
"""

from typing import NamedTuple

import keras
from keras import ops

from keras_nsde.solvers.base import Solver
from keras_nsde.solvers.functional import solve_functional
from keras_nsde.solvers.problem import SDETerms

INTERPRETATIONS = ("stratonovich", "ito")


class HeunState(NamedTuple):
    """Reversible Heun's state at step n: y_n, y^_n and the fields (f_n, g_n) at (y^_n, t_n).

    g is a scalar zero for the noiseless (ODE) problem.
    """

    y: object
    y_hat: object
    f: object
    g: object


@keras.saving.register_keras_serializable(package="keras_nsde")
class ReversibleHeun(Solver):
    """Reversible Heun; see the module docstring for the scheme.

    Args:
        interpretation: "stratonovich" (the solver's own: dh = f dt + G o dW) or
            "ito" (dh = f dt + G dW, the SDE Euler-Maruyama solves, via the
            drift correction f - G dG/dh / 2; needs a diffusion whose
            elementwise derivative is known in closed form).
    """

    name = "reversible_heun"
    strong_order = 0.5  # general noise; 1 for commutative and additive noise
    weak_order = 1.0

    def __init__(self, interpretation="stratonovich"):
        if interpretation not in INTERPRETATIONS:
            raise ValueError(
                f"interpretation must be one of {list(INTERPRETATIONS)}. Received: interpretation={interpretation!r}"
            )
        self.interpretation = interpretation

    @property
    def sde_type(self):
        return self.interpretation

    def check(self, diffusion):
        if self.interpretation == "ito" and diffusion.is_noisy and not diffusion.has_derivative:
            raise ValueError(
                "ReversibleHeun(interpretation='ito') needs the diffusion's elementwise derivative dG/dh in "
                f"closed form (Diffusion.derivative), which {type(diffusion).__name__} does not give; use "
                "interpretation='stratonovich' or another solver. "
                f"Received: diffusion={type(diffusion).__name__}"
            )

    def fields(self, problem, y_hat, n):
        """(f, g) at (y^, t_n): the drift (Itô-corrected if asked) and the diffusion (a scalar 0 without noise)."""
        terms = problem.terms
        t, _ = problem.time(n, y_hat.dtype)
        f = terms.drift(y_hat, t)
        if not problem.noisy:
            return f, ops.zeros((), y_hat.dtype)
        g = terms.diffusion(y_hat, t, f)
        if self.interpretation == "ito":
            g_prime = terms.diffusion_derivative(y_hat, t, f)
            if g_prime is None:
                raise ValueError(
                    "ReversibleHeun(interpretation='ito') needs the diffusion's derivative; it returned None."
                )
            f = f - 0.5 * g * g_prime
        return f, g

    def init(self, problem, h0):
        return HeunState(h0, h0, *self.fields(problem, h0, 0))

    def step(self, problem, state, n):
        _, dt = problem.time(n, state.y.dtype)
        dW = problem.increment(n)
        y_hat = 2.0 * state.y - state.y_hat + state.f * dt + state.g * dW
        f, g = self.fields(problem, y_hat, n + 1)
        return HeunState(state.y + 0.5 * (state.f + f) * dt + 0.5 * (state.g + g) * dW, y_hat, f, g)

    def previous_y_hat(self, state, dt, dW):
        """y^_n = 2 y_{n+1} - y^_{n+1} - f_{n+1} dt - g_{n+1} dW_n from state n + 1 (the first half of `inverse`)."""
        return 2.0 * state.y - state.y_hat - state.f * dt - state.g * dW

    def previous_state(self, state, y_hat, fields, dt, dW):
        """State n from state n + 1, y^_n and F_n = (f, g)(y^_n, t_n) (the second half of `inverse`):

        y_n = y_{n+1} - (f_n + f_{n+1}) dt / 2 - (g_n + g_{n+1}) dW_n / 2.
        """
        f, g = fields
        return HeunState(state.y - 0.5 * (f + state.f) * dt - 0.5 * (g + state.g) * dW, y_hat, f, g)

    def inverse(self, problem, state, n):
        """The algebraic inverse of `step`: state n from state n + 1, one evaluation of (f, G) at y^_n."""
        _, dt = problem.time(n, state.y.dtype)
        dW = problem.increment(n)
        y_hat = self.previous_y_hat(state, dt, dW)
        return self.previous_state(state, y_hat, self.fields(problem, y_hat, n), dt, dW)

    def output(self, state):
        return state.y

    def get_config(self):
        return {"interpretation": self.interpretation}


def reversible_heun(
    drift_fn,
    diffusion_fn,
    h0,
    dW,
    t0=0.0,
    t1=1.0,
    return_trajectory=False,
    num_steps=None,
    interpretation="stratonovich",
    diffusion_derivative_fn=None,
):
    """Integrates dh = f dt + G o dB (Stratonovich) with reversible Heun; see `ReversibleHeun`.

    Arguments and returns as `euler_maruyama`, plus `interpretation`
    ("stratonovich", or "ito" with `diffusion_derivative_fn`, G'(h, t, f) =
    dG_i/dh_i, for the Itô SDE dh = f dt + G dB).
    """
    terms = SDETerms(drift_fn, diffusion_fn, diffusion_derivative_fn)
    return solve_functional(ReversibleHeun(interpretation), terms, h0, dW, t0, t1, return_trajectory, num_steps)
