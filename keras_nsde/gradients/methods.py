"""Gradient methods as objects: `SDEBlock(gradient=...)` takes one, its name or its config.

    Autodiff()                 backpropagation through the time loop: O(N) memory
    Pathwise(checkpoints=C)    Theorem 3.1's pathwise adjoint, recomputing from C checkpoints
    Reversible()               the reversible solver run backwards: exact, O(1) states

Each method's algorithm is written once, in keras.ops over the backend
primitives (`autodiff`, `pathwise`, `reversible` modules): the same
algorithm, memory and cost on TensorFlow, JAX and PyTorch.
"""

import keras

from keras_nsde import validation
from keras_nsde.gradients.autodiff import autodiff_solve
from keras_nsde.gradients.pathwise import pathwise_solve
from keras_nsde.gradients.reversible import reversible_solve
from keras_nsde.registry import Configurable


class GradientMethod(Configurable):
    """Base class: `solve(solver, problem, h0)` runs a fixed-step solver's loop with this method's gradient."""

    name = None

    def check(self, solver):
        """Raises ValueError if this method cannot differentiate `solver` (an adaptive solver brings its own)."""
        if not solver.is_fixed_step:
            raise ValueError(
                f"{type(solver).__name__} chooses its own steps and brings its own (adjoint) gradient; use "
                f"gradient='autodiff'. Received: gradient={self!r}"
            )

    def solve(self, solver, problem, h0):
        """What `problem.saveat` asks for, from h0, differentiable by this method."""
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_nsde")
class Autodiff(GradientMethod):
    """Backpropagation through the loop: every step's activations are kept (O(N) memory).

    With an adaptive solver (`Dopri5`), the solver's own gradient.
    """

    name = "autodiff"

    def check(self, solver):
        pass

    def solve(self, solver, problem, h0):
        return autodiff_solve(solver, problem, h0)


@keras.saving.register_keras_serializable(package="keras_nsde")
class Pathwise(GradientMethod):
    """The pathwise gradient of Theorem 3.1 (`keras_nsde.gradients.pathwise`), for any fixed-step solver.

    Args:
        checkpoints: how many states the forward pass keeps; None keeps
            about sqrt(N) (about 1.67x autodiff's time), N keeps all (1.33x).
    """

    name = "pathwise"

    def __init__(self, checkpoints=None):
        self.checkpoints = None if checkpoints is None else validation.integer("checkpoints", checkpoints, minimum=1)

    def solve(self, solver, problem, h0):
        return pathwise_solve(solver, problem, h0, self.checkpoints)

    def get_config(self):
        return {"checkpoints": self.checkpoints}


@keras.saving.register_keras_serializable(package="keras_nsde")
class Reversible(GradientMethod):
    """Exact gradients with O(1) stored states (`keras_nsde.gradients.reversible`), for `ReversibleHeun`."""

    name = "reversible"

    def check(self, solver):
        if not solver.is_reversible:
            raise ValueError(
                "gradient='reversible' needs an algebraically reversible solver (solver='reversible_heun'). "
                f"Received: solver={solver!r}"
            )

    def solve(self, solver, problem, h0):
        return reversible_solve(solver, problem, h0)
