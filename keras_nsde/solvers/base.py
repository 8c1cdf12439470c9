"""What a solver is: a serializable object that advances a state one step on a Brownian path.

`SDEBlock(solver=...)` takes a `Solver`, its name or its config. A fixed-step
solver is three functions of an `SDETerms` (the SDE's vector fields):

    state = solver.initial_state(terms, path, h0, t0)
    step = solver.step_fn(terms, path, t0, dt)      # state_{n+1} = step(state_n, n)
    h = solver.output(state)

For one-state solvers (Euler-Maruyama, Milstein) the state is h itself;
reversible Heun carries (y, y_hat, f, g). A solver samples nothing: the
increments come from `path` (None for the noiseless, ODE step).
"""

from typing import Callable, NamedTuple, Optional

from keras_nsde.registry import Configurable


class SDETerms(NamedTuple):
    """The vector fields of dh = f(h, t) dt + G(h, t) dW (diagonal noise).

    Attributes:
        drift: `f(h, t)`, a tensor with h's shape.
        diffusion: `G(h, t, f)`, a tensor with h's shape (f is the drift at the
            same point, for diffusions such as dropout's G = sigma f), or None.
        derivative: `G'(h, t, f)`, the elementwise dG_i/dh_i, or a function
            returning None (or None) where no closed form is known.
        variables: the trainable variables the fields read, for custom
            gradients that take the weights as explicit arguments (the JAX and
            PyTorch reversible gradient; TensorFlow finds them itself).
    """

    drift: Callable
    diffusion: Optional[Callable] = None
    derivative: Optional[Callable] = None
    variables: tuple = ()

    def diffusion_derivative(self, h, t, f):
        return None if self.derivative is None else self.derivative(h, t, f)


class Solver(Configurable):
    """Base class of every solver.

    Attributes:
        name: the string `SDEBlock(solver=...)` accepts for it.
        sde_type: "ito" or "stratonovich": the SDE whose solution it converges to.
        strong_order, weak_order: for general (diagonal) noise.
        adaptive: True for solvers that choose their own steps (`Dopri5`).
        single_state: the state is h alone (what the pathwise gradient needs).
    """

    name = None
    sde_type = "ito"
    strong_order = None
    weak_order = None
    adaptive = False
    single_state = True

    def initial_state(self, terms, path, h0, t0):
        return h0

    def step_fn(self, terms, path, t0, dt):
        raise NotImplementedError(f"{type(self).__name__} must implement step_fn(terms, path, t0, dt).")

    def output(self, state):
        return state

    def check(self, diffusion):
        """Raises ValueError if this solver cannot integrate `diffusion` (a `Diffusion`)."""
