"""What a solve is about: the SDE's terms, its Brownian path, the time grid, and which states to return.

    problem = Problem(SDETerms(drift, diffusion), path, Grid(0.0, 1.0, num_steps=11), SaveAt(steps=True))

A solver advances a state on a problem one step at a time; a gradient
method (`keras_nsde.gradients`) runs that loop and differentiates it.
"""

from typing import Callable, NamedTuple, Optional

from keras import ops

from keras_nsde import validation


class SDETerms(NamedTuple):
    """The vector fields of dh = f(h, t) dt + G(h, t) dW (diagonal noise).

    Attributes:
        drift: `f(h, t)`, a tensor with h's shape.
        diffusion: `G(h, t, f)`, a tensor with h's shape (f is the drift at the
            same point, for diffusions such as dropout's G = sigma f), or None.
        derivative: `G'(h, t, f)`, the elementwise dG_i/dh_i, or a function
            returning None (or None) where no closed form is known.
        variables: the trainable variables the fields read, which custom
            gradients on JAX and PyTorch take as explicit arguments.
    """

    drift: Callable
    diffusion: Optional[Callable] = None
    derivative: Optional[Callable] = None
    variables: tuple = ()

    def diffusion_derivative(self, h, t, f):
        return None if self.derivative is None else self.derivative(h, t, f)


class Grid:
    """The time grid t_n = t0 + n dt, n = 0 .. N, of N equal steps dt = (t1 - t0) / N.

    Args:
        t0: start of the interval, finite.
        t1: its end, finite, t1 > t0.
        num_steps: N >= 1.
    """

    def __init__(self, t0, t1, num_steps):
        self.t0, self.t1 = validation.number("t0", t0), validation.number("t1", t1)
        if not self.t1 > self.t0:
            raise ValueError(f"t1 must be greater than t0. Received: t0={t0!r}, t1={t1!r}")
        self.num_steps = validation.integer("num_steps", num_steps, minimum=1)
        self.dt = (self.t1 - self.t0) / self.num_steps

    def time(self, n, dtype):
        """(t_n, dt) as tensors of `dtype`; converted, not cast (a cast would round a Python float through float32)."""
        dt = ops.convert_to_tensor(self.dt, dtype=dtype)
        return ops.convert_to_tensor(self.t0, dtype=dtype) + ops.cast(n, dtype) * dt, dt

    def __repr__(self):
        return f"Grid(t0={self.t0}, t1={self.t1}, num_steps={self.num_steps})"


class SaveAt:
    """Which states a solve returns: h(t1) (the default) or, with `steps=True`, all N + 1 states h(t_n).

    The trajectory is time-major, shape `(num_steps + 1,) + h.shape`.
    """

    def __init__(self, steps=False):
        self.steps = validation.boolean("steps", steps)

    def collect(self, outputs, final):
        """The solve's result from the outputs of states 0 .. N - 1 (stacked; None unless `steps`) and of state N."""
        if not self.steps:
            return final
        return ops.concatenate([outputs, ops.expand_dims(final, 0)], axis=0)

    def __repr__(self):
        return f"SaveAt(steps={self.steps})"


class Problem(NamedTuple):
    """An SDE on a grid: the terms, the Brownian path (None: the ODE dh = f dt), the grid, the outputs."""

    terms: SDETerms
    path: object
    grid: Grid
    saveat: SaveAt

    @property
    def noisy(self):
        return self.path is not None

    @property
    def num_steps(self):
        return self.grid.num_steps

    def time(self, n, dtype):
        """(t_n, dt) in `dtype`."""
        return self.grid.time(n, dtype)

    def increment(self, n):
        """dW_n with the state's shape; 0.0 for the noiseless problem."""
        return self.path.increment(n) if self.noisy else 0.0


class Solution(NamedTuple):
    """What a solve returns: `ys` (h(t1) or the trajectory, as `SaveAt` asked) and the solver's statistics."""

    ys: object
    stats: dict
