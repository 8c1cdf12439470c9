"""An adaptive Neural ODE baseline: Dormand-Prince (RK45) with an adjoint gradient, on every backend."""

import keras

from keras_nsde import backend, validation
from keras_nsde.solvers.base import Solver
from keras_nsde.solvers.problem import Solution


@keras.saving.register_keras_serializable(package="keras_nsde")
class Dopri5(Solver):
    """Adaptive Dormand-Prince for the Neural ODE (diffusion "none"), with an adjoint gradient.

    Each backend's own solver: TensorFlow Probability's `DormandPrince` on
    TensorFlow (extra `dopri5`), diffrax's `Dopri5` with a `PIDController`
    and `BacksolveAdjoint` on JAX (extra `dopri5-jax`), torchdiffeq's
    `odeint_adjoint(method="dopri5")` on PyTorch (extra `dopri5-torch`). All
    three accept a step when the local error estimate is within
    atol + rtol * |h| and differentiate by the continuous adjoint (the
    adjoint ODE solved backwards), so memory does not grow with the steps.
    The solver chooses its own steps: it owns its loop (`solve`), takes
    `gradient="autodiff"` (meaning its own adjoint), and reports the number
    of drift evaluations of the forward solve as the statistic `nfe`.

    Args:
        rtol: relative error tolerance per step, > 0.
        atol: absolute error tolerance per step, > 0.
    """

    name = "dopri5"
    statistics = ("nfe",)
    strong_order = None
    weak_order = None

    def __init__(self, rtol=1e-3, atol=1e-6):
        self.rtol = validation.number("rtol", rtol, minimum=0.0, exclusive_minimum=True)
        self.atol = validation.number("atol", atol, minimum=0.0, exclusive_minimum=True)

    def check(self, diffusion):
        if diffusion.is_noisy:
            raise ValueError(
                "Dopri5 integrates the Neural ODE (diffusion='none'). "
                f"Received: diffusion={type(diffusion).__name__}"
            )

    def solve(self, problem, h0, gradient):
        """The `Solution` from h0 at t1, or at the grid's or `SaveAt`'s times; the adaptive steps are its own.

        The error control needs float32 or float64 states: half precision
        (a `mixed_float16` block) is a ValueError.
        """
        dtype = keras.backend.standardize_dtype(h0.dtype)
        if dtype not in ("float32", "float64"):
            raise ValueError(
                "Dopri5 integrates float32 or float64 states (its error control fails in half precision; give the "
                f"block dtype='float32'). Received: a state of dtype={dtype}"
            )
        grid, saveat = problem.grid, problem.saveat
        times = None
        if saveat.every_step:
            times = keras.ops.convert_to_tensor(grid.time_points() if saveat.steps else saveat.times, h0.dtype)
        ys, nfe = dormand_prince(problem.terms.drift, h0, grid.t0, grid.t1, self.rtol, self.atol, times, problem.terms.variables)
        return Solution(ys, {"nfe": nfe})

    def get_config(self):
        return {"rtol": self.rtol, "atol": self.atol}


def dormand_prince(drift_fn, h0, t0=0.0, t1=1.0, rtol=1e-3, atol=1e-6, return_trajectory_at=None, variables=()):
    """Integrates dh = f(h, t) dt with adaptive Dormand-Prince steps on the current backend.

    Gradients reach h0 and the drift's weights through the backend's adjoint
    (see `Dopri5`). On JAX the adjoint differentiates only what is passed in,
    so pass the Keras variables `drift_fn` reads as `variables` (other
    backends find them themselves).

    Args:
        drift_fn: `f(h, t)`.
        h0: initial state.
        t0: start of the interval.
        t1: its end.
        rtol: relative error tolerance per step.
        atol: absolute error tolerance per step.
        return_trajectory_at: optional 1-D times in [t0, t1] to return states at.
        variables: the trainable Keras variables `drift_fn` reads.

    Returns:
        (h(t1) or the states at the given times stacked on axis 0, NFE), where
        NFE is the number of drift evaluations of the forward solve.
    """
    return backend.get().dormand_prince(drift_fn, h0, t0, t1, rtol, atol, return_trajectory_at, tuple(variables))
