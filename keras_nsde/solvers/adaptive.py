"""An adaptive Neural ODE baseline: TensorFlow Probability's Dormand-Prince (RK45)."""

import keras

from keras_nsde import optional
from keras_nsde.backend import unsupported
from keras_nsde.solvers.base import Solver
from keras_nsde.solvers.problem import Solution


@keras.saving.register_keras_serializable(package="keras_nsde")
class Dopri5(Solver):
    """Adaptive Dormand-Prince (TFP) for the Neural ODE (diffusion "none"), with TFP's adjoint gradient.

    Args:
        rtol, atol: relative and absolute error tolerances per step.
    """

    name = "dopri5"
    statistics = ("nfe",)  # drift evaluations of the forward solve
    strong_order = None
    weak_order = None

    def __init__(self, rtol=1e-3, atol=1e-6):
        for name, value in (("rtol", rtol), ("atol", atol)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}")
        self.rtol = float(rtol)
        self.atol = float(atol)

    def check(self, diffusion):
        if keras.backend.backend() != "tensorflow":
            raise unsupported("solver=Dopri5 (TensorFlow Probability's Dormand-Prince)")
        if diffusion.is_noisy:
            raise ValueError(
                "Dopri5 integrates the Neural ODE (diffusion='none'). "
                f"Received: diffusion={type(diffusion).__name__}"
            )

    def solve(self, problem, h0, gradient):
        """The `Solution` from h0 on the problem's grid ends (or at its N + 1 times with `SaveAt(steps=True)`).

        Adaptive steps; the gradient is TFP's adjoint (`gradient` is Autodiff,
        checked where the solver and the gradient method meet).
        """
        grid = problem.grid
        times = keras.ops.linspace(grid.t0, grid.t1, grid.num_steps + 1) if problem.saveat.steps else None
        ys, nfe = dormand_prince(problem.terms.drift, h0, grid.t0, grid.t1, self.rtol, self.atol, times)
        return Solution(ys, {"nfe": nfe})

    def get_config(self):
        return {"rtol": self.rtol, "atol": self.atol}


def dormand_prince(drift_fn, h0, t0=0.0, t1=1.0, rtol=1e-3, atol=1e-6, return_trajectory_at=None):
    """Integrates dh = f(h, t) dt with `tfp.math.ode.DormandPrince`, adaptive steps.

    Gradients (to h0 and to every variable `drift_fn` reads) come from TFP's
    adjoint sensitivity method: the backward pass solves the adjoint ODE
    instead of storing the forward steps.

    Args:
        drift_fn: `f(h, t)`.
        h0: initial state.
        t0, t1: interval.
        rtol, atol: relative and absolute error tolerances per step.
        return_trajectory_at: optional 1-D times in [t0, t1] to return states at.

    Returns:
        (h(t1) or the states at the given times stacked on axis 0, NFE), where
        NFE is the number of drift evaluations of the forward solve (int32).
    """
    tfp = optional.require("tensorflow_probability", extra="dopri5")
    solver = tfp.math.ode.DormandPrince(rtol=rtol, atol=atol)
    times = [t1] if return_trajectory_at is None else return_trajectory_at
    results = solver.solve(lambda t, h: drift_fn(h, keras.ops.cast(t, h.dtype)), t0, h0, solution_times=times)
    states = results.states[-1] if return_trajectory_at is None else results.states
    return states, results.diagnostics.num_ode_fn_evaluations
