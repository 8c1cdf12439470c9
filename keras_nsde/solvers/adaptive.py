"""An adaptive Neural ODE baseline: TensorFlow Probability's Dormand-Prince (RK45)."""

import tensorflow as tf

from keras_nsde import optional


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
    results = solver.solve(lambda t, h: drift_fn(h, tf.cast(t, h.dtype)), t0, h0, solution_times=times)
    states = results.states[-1] if return_trajectory_at is None else results.states
    return states, results.diagnostics.num_ode_fn_evaluations
