"""What a solver is: a serializable object that advances a state one step of a `Problem`.

`SDEBlock(solver=...)` takes a `Solver`, its name or its config. A fixed-step
solver implements three methods, and a reversible one a fourth:

    state = solver.init(problem, h0)
    state = solver.step(problem, state, n)        # state_n -> state_{n+1}
    h = solver.output(state)
    state = solver.inverse(problem, state, n)     # state_{n+1} -> state_n (reversible solvers)

For Euler-Maruyama and Milstein the state is h itself; reversible Heun
carries (y, y^, f, g). A solver samples nothing: the increments come from
the problem's path (None for the noiseless, ODE step). A gradient method
(`keras_nsde.gradients`) runs the loop; a solver that owns its loop (the
adaptive `Dopri5`) overrides `solve` instead.
"""

from keras_nsde.registry import Configurable
from keras_nsde.solvers.problem import Solution


class Solver(Configurable):
    """Base class of every solver.

    Attributes:
        name: the string `SDEBlock(solver=...)` accepts for it.
        sde_type: "ito" or "stratonovich": the SDE whose solution it converges to.
        strong_order: the strong order for general (diagonal) noise.
        weak_order: the weak order.
        statistics: names of the numbers a solve reports beside its result
            (`Solution.stats`; `SDEBlock` keeps the last call's as weights).
    """

    name = None
    sde_type = "ito"
    strong_order = None
    weak_order = None
    statistics = ()

    def init(self, problem, h0):
        return h0

    def step(self, problem, state, n):
        raise NotImplementedError(f"{type(self).__name__} must implement step(problem, state, n).")

    def output(self, state):
        return state

    def inverse(self, problem, state, n):
        raise NotImplementedError(f"{type(self).__name__} is not algebraically reversible.")

    @property
    def is_fixed_step(self):
        """Whether the solver takes the grid's steps (it implements `step`); gradient methods run its loop."""
        return type(self).step is not Solver.step

    @property
    def is_reversible(self):
        """Whether the solver implements `inverse`, rebuilding state n from state n + 1."""
        return type(self).inverse is not Solver.inverse

    def check(self, diffusion):
        """Raises ValueError if this solver cannot integrate `diffusion` (a `Diffusion`)."""

    def solve(self, problem, h0, gradient):
        """The `Solution` from h0: the gradient method runs this solver's steps and differentiates them."""
        return Solution(gradient.solve(self, problem, h0), {})
