"""SDE solvers: pure functions of (drift, diffusion, h0, dW) that sample nothing, the solver objects, and `solve`.

    SDEBlock(solver="milstein")  or  SDEBlock(solver=keras_nsde.solvers.ReversibleHeun(interpretation="ito"))
    solution = keras_nsde.solvers.solve(terms, "euler_maruyama", path, h0, Grid(0.0, 1.0, 11), SaveAt(steps=True))
"""

from keras_nsde import gradients, registry
from keras_nsde.solvers import checks
from keras_nsde.solvers.adaptive import Dopri5, dormand_prince
from keras_nsde.solvers.base import Solver
from keras_nsde.solvers.euler_maruyama import EulerMaruyama, euler_maruyama
from keras_nsde.solvers.kl import append_kl, split_kl, with_path_kl
from keras_nsde.solvers.milstein import Milstein, milstein
from keras_nsde.solvers.problem import Grid, Problem, SaveAt, SDETerms, Solution
from keras_nsde.solvers.reversible_heun import HeunState, ReversibleHeun, reversible_heun

BY_NAME = {cls.name: cls for cls in (EulerMaruyama, Milstein, ReversibleHeun, Dopri5)}


def get(identifier):
    """A `Solver` from a name ("euler_maruyama", "milstein", "reversible_heun", "dopri5"), a config or an instance."""
    return registry.get(identifier, Solver, BY_NAME, "solver")


def solve(terms, solver, path, h0, grid, saveat=None, gradient="autodiff"):
    """Solves the SDE `terms` from h0 on `grid` along `path` (None: the ODE) with `solver`: a `Solution`.

    Args:
        terms: the `SDETerms` (f, G, dG/dh, the weights they read).
        solver: a `Solver` or its name.
        path: a `keras_nsde.brownian.BrownianPath` with `grid.num_steps` increments, or None.
        h0: the initial state.
        grid: the `Grid`.
        saveat: a `SaveAt` (default: the final state only).
        gradient: a `keras_nsde.gradients` method or its name.

    Returns:
        `Solution(ys, stats)`: ys is h(t1), or with `SaveAt(steps=True)` the
        `(N + 1,) + h0.shape` trajectory; stats holds the solver's statistics.
    """
    solver, gradient = get(solver), gradients.get(gradient)
    gradient.check(solver)
    terms, h0 = checks.checked_terms(terms), checks.floating_state(h0)
    checks.check_problem(path, grid, saveat, h0)
    return solver.solve(Problem(terms, path, grid, saveat or SaveAt()), h0, gradient)


__all__ = [
    "Dopri5",
    "EulerMaruyama",
    "Grid",
    "HeunState",
    "Milstein",
    "Problem",
    "ReversibleHeun",
    "SDETerms",
    "SaveAt",
    "Solution",
    "Solver",
    "append_kl",
    "dormand_prince",
    "euler_maruyama",
    "get",
    "milstein",
    "reversible_heun",
    "solve",
    "split_kl",
    "with_path_kl",
]
