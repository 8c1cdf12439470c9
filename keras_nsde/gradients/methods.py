"""Gradient methods as objects: `SDEBlock(gradient=...)` takes one, its name or its config.

    Autodiff()                 backpropagation through the time loop: O(N) memory
    Pathwise(checkpoints=C)    Theorem 3.1's pathwise gradient, recomputing from C checkpoints
    Reversible()               reversible Heun run backwards: exact, O(1) states (ReversibleHeun only)
"""

import keras

from keras_nsde import backend, validation
from keras_nsde.registry import Configurable
from keras_nsde.solvers.reversible_heun import ReversibleHeun


class GradientMethod(Configurable):
    """Base class: `solve` runs a fixed-step solver from h0 with this method's gradient."""

    name = None

    def check(self, solver):
        """Raises ValueError if this method cannot differentiate `solver`."""
        if solver.adaptive and self.name != "autodiff":
            raise ValueError(
                f"{type(solver).__name__} brings its own (adjoint) gradient; use gradient='autodiff'. "
                f"Received: gradient={self!r}"
            )

    def solve(self, solver, terms, path, h0, t0, dt, num_steps, return_trajectory=False):
        """h_N (or the `(N + 1,) + h0.shape` trajectory) of `solver` on `path` (None: no noise)."""
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_nsde")
class Autodiff(GradientMethod):
    """Backpropagation through the unrolled loop: every step's activations are kept (O(N) memory)."""

    name = "autodiff"

    def solve(self, solver, terms, path, h0, t0, dt, num_steps, return_trajectory=False):
        step = solver.step_fn(terms, path, t0, dt)
        state = solver.initial_state(terms, path, h0, t0)
        return backend.get().integrate(step, state, num_steps, return_trajectory, solver.output)


@keras.saving.register_keras_serializable(package="keras_nsde")
class Pathwise(GradientMethod):
    """The pathwise gradient of Theorem 3.1 (the backend's `integrate_pathwise`), for one-state solvers.

    Args:
        checkpoints: how many states the forward pass keeps; None keeps
            about sqrt(N) (about 1.67x autodiff's time), N keeps all (1.33x).
    """

    name = "pathwise"

    def __init__(self, checkpoints=None):
        self.checkpoints = None if checkpoints is None else validation.integer("checkpoints", checkpoints, minimum=1)

    def check(self, solver):
        super().check(solver)
        if not solver.single_state:
            raise ValueError(
                f"gradient='pathwise' needs a solver whose state is h alone (EulerMaruyama, Milstein); "
                f"for {type(solver).__name__} use gradient='reversible' or 'autodiff'. Received: solver={solver!r}"
            )

    def solve(self, solver, terms, path, h0, t0, dt, num_steps, return_trajectory=False):
        step = solver.step_fn(terms, path, t0, dt)
        return backend.get().integrate_pathwise(step, h0, num_steps, return_trajectory, self.checkpoints)

    def get_config(self):
        return {"checkpoints": self.checkpoints}


@keras.saving.register_keras_serializable(package="keras_nsde")
class Reversible(GradientMethod):
    """Exact gradients with O(1) stored states, for `ReversibleHeun` (the backend's `integrate_reversible`)."""

    name = "reversible"

    def check(self, solver):
        if not isinstance(solver, ReversibleHeun):
            raise ValueError(
                "gradient='reversible' needs the algebraically reversible solver (solver='reversible_heun'). "
                f"Received: solver={solver!r}"
            )

    def solve(self, solver, terms, path, h0, t0, dt, num_steps, return_trajectory=False):
        return backend.get().integrate_reversible(solver, terms, path, h0, t0, dt, num_steps, return_trajectory)
