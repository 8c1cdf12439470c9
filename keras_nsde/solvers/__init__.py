"""SDE solvers: pure functions of (drift, diffusion, h0, dW) that sample nothing, and the solver objects.

    SDEBlock(solver="milstein")  or  SDEBlock(solver=keras_nsde.solvers.ReversibleHeun(interpretation="ito"))
"""

from keras_nsde import registry
from keras_nsde.solvers.adaptive import Dopri5, dormand_prince
from keras_nsde.solvers.base import SDETerms, Solver
from keras_nsde.solvers.euler_maruyama import EulerMaruyama, euler_maruyama, euler_maruyama_step
from keras_nsde.solvers.milstein import Milstein, milstein, milstein_step
from keras_nsde.solvers.reversible_heun import ReversibleHeun, reversible_heun

BY_NAME = {cls.name: cls for cls in (EulerMaruyama, Milstein, ReversibleHeun, Dopri5)}


def get(identifier):
    """A `Solver` from a name ("euler_maruyama", "milstein", "reversible_heun", "dopri5"), a config or an instance."""
    return registry.get(identifier, Solver, BY_NAME, "solver")


__all__ = [
    "Dopri5",
    "EulerMaruyama",
    "Milstein",
    "ReversibleHeun",
    "SDETerms",
    "Solver",
    "dormand_prince",
    "euler_maruyama",
    "euler_maruyama_step",
    "get",
    "milstein",
    "milstein_step",
    "reversible_heun",
]
