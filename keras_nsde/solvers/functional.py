"""What the solvers' pure functions share: argument checks, the Brownian path, the problem, the loop."""

from keras import ops

from keras_nsde import validation
from keras_nsde.brownian import BrownianPath, GivenIncrements
from keras_nsde.gradients.autodiff import autodiff_solve
from keras_nsde.solvers import checks
from keras_nsde.solvers.problem import Grid, Problem, SaveAt, SDETerms


def solve_functional(solver, terms, h0, dW, t0=0.0, t1=1.0, return_trajectory=False, num_steps=None):
    """Validates the arguments, wraps dW as a path, and runs `solver` from t0 to t1 (differentiable by autodiff).

    Args:
        solver: a fixed-step `Solver`.
        terms: its `SDETerms`; a diffusion needs dW.
        h0: initial state.
        dW: increments `(num_steps,) + h0.shape`, a `BrownianPath`, or None (an ODE).
        t0: start of the interval.
        t1: its end, t1 > t0.
        return_trajectory: return all `(num_steps + 1,) + h0.shape` states.
        num_steps: only needed when dW is None; if given with dW, it must match.
    """
    h0 = checks.floating_state(h0)
    terms = checks.checked_terms(SDETerms(*terms), ("drift_fn", "diffusion_fn", "diffusion_derivative_fn"))
    return_trajectory = validation.boolean("return_trajectory", return_trajectory)
    if num_steps is not None:
        num_steps = validation.integer("num_steps", num_steps, minimum=1)
    if dW is None:
        if terms.diffusion is not None:
            raise ValueError("dW is required when diffusion_fn is given. Received: dW=None")
        if num_steps is None:
            raise ValueError("num_steps is required when dW is None (an ODE). Received: num_steps=None")
        path = None
    else:
        if terms.diffusion is None:
            raise ValueError(
                "dW drives the diffusion: pass diffusion_fn too, or dW=None for an ODE. Received: diffusion_fn=None"
            )
        path = dW if isinstance(dW, BrownianPath) else GivenIncrements(_increments(dW, h0))
        if num_steps is not None and num_steps != path.num_steps:
            raise ValueError(
                f"num_steps must match the number of increments in dW ({path.num_steps}), or be left out. "
                f"Received: num_steps={num_steps}"
            )
        num_steps = path.num_steps
    problem = Problem(terms, path, Grid(t0, t1, num_steps), SaveAt(steps=return_trajectory))
    return autodiff_solve(solver, problem, h0)


def _increments(dW, h0):
    """dW as a tensor of h0's dtype, checked to have shape (num_steps,) + h0.shape (no broadcasting)."""
    try:
        dW = ops.convert_to_tensor(dW, h0.dtype)
    except Exception as error:  # each backend raises its own kind for what it cannot convert
        raise ValueError(f"dW must be a tensor of increments. Received: dW={dW!r} ({type(error).__name__})") from None
    checks.increments_shape(dW, h0)
    return dW
