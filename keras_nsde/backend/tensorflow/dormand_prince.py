"""Adaptive Dormand-Prince on TensorFlow: TensorFlow Probability's solver and adjoint gradient."""

import keras

from keras_nsde import optional


def dormand_prince(drift_fn, h0, t0, t1, rtol, atol, times=None, variables=()):
    """Integrates dh = f(h, t) dt with `tfp.math.ode.DormandPrince`, adaptive steps.

    Gradients (to h0 and to every variable `drift_fn` reads; TFP finds them
    itself, so `variables` is unused here) come from TFP's adjoint
    sensitivity method: the backward pass solves the adjoint ODE backwards
    instead of storing the forward steps.

    Returns:
        (h(t1), or the states at `times` stacked on axis 0; NFE), NFE being the
        number of drift evaluations of the forward solve (int32): TFP's count
        of six per attempted step, plus the derivative at t0 that starts the
        first step, which its diagnostics leave out.
    """
    tfp = optional.require("tensorflow_probability", extra="dopri5")
    solver = tfp.math.ode.DormandPrince(rtol=rtol, atol=atol)
    solution_times = [t1] if times is None else times
    results = solver.solve(lambda t, h: drift_fn(h, keras.ops.cast(t, h.dtype)), t0, h0, solution_times=solution_times)
    states = results.states[-1] if times is None else results.states
    return states, results.diagnostics.num_ode_fn_evaluations + INITIAL_DERIVATIVE


# TFP evaluates f(t0, h0) once before the first step (the FSAL stage its steps reuse) and does not count it.
INITIAL_DERIVATIVE = 1
