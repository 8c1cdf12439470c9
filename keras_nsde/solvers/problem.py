"""What a solve is about: the SDE's terms, its Brownian path, the time grid, and which states to return.

    problem = Problem(SDETerms(drift, diffusion), path, Grid(0.0, 1.0, num_steps=11), SaveAt(steps=True))

A solver advances a state on a problem one step at a time; a gradient
method (`keras_nsde.gradients`) runs that loop and differentiates it.
"""

from typing import Callable, NamedTuple, Optional

import numpy as np
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


# The loops count steps in int32.
MAX_STEPS = 2**31 - 1


class Grid:
    """The time grid t_0 < t_1 < ... < t_N of a solve: N equal steps, or the steps through given times.

        Grid(0.0, 1.0, num_steps=11)                       # t_n = t0 + n dt, dt = (t1 - t0) / N
        Grid.through([0.0, 0.3, 0.35, 1.0], max_step=0.1)  # every observation time is a grid time

    Args:
        t0: start of the interval, finite.
        t1: its end, finite, t1 > t0.
        num_steps: N >= 1 equal steps (at most 2**31 - 1, the loops' int32 counter).
    """

    def __init__(self, t0, t1, num_steps):
        self.t0, self.t1 = validation.number("t0", t0), validation.number("t1", t1)
        if not self.t1 > self.t0:
            raise ValueError(f"t1 must be greater than t0. Received: t0={t0!r}, t1={t1!r}")
        self.num_steps = validation.integer("num_steps", num_steps, minimum=1, maximum=MAX_STEPS)
        self.dt = (self.t1 - self.t0) / self.num_steps
        self.times = None  # equal steps: t_n in closed form

    @classmethod
    def through(cls, times, max_step):
        """The grid whose steps split each interval between consecutive `times` into equal steps of at most `max_step`.

        Args:
            times: sorted 1-D times (at least two, strictly increasing), the
                first and last being t0 and t1; irregular spacing is fine.
            max_step: the largest step size, > 0.
        """
        times = _sorted_times("times", times)
        max_step = validation.number("max_step", max_step, minimum=0.0, exclusive_minimum=True)
        steps = np.ceil(np.diff(times) / max_step - 1e-9)
        if not np.sum(steps) <= MAX_STEPS:
            raise ValueError(
                f"max_step gives {np.sum(steps):.4g} steps through the times, more than {MAX_STEPS}. "
                f"Received: max_step={max_step!r}"
            )
        steps = [int(n) for n in steps]
        pieces = [np.linspace(a, b, n + 1)[:-1] for a, b, n in zip(times[:-1], times[1:], steps)]
        grid_times = np.concatenate(pieces + [times[-1:]])
        grid = cls(float(times[0]), float(times[-1]), len(grid_times) - 1)
        uniform = np.allclose(np.diff(grid_times), grid.dt, rtol=1e-9, atol=0.0)
        grid.times = None if uniform else grid_times
        return grid

    @property
    def uniform(self):
        return self.times is None

    @property
    def step_sizes(self):
        """dt_n for n = 0 .. N - 1 (NumPy float64), or the float dt of a uniform grid."""
        return self.dt if self.uniform else np.diff(self.times)

    def time_points(self):
        """t_0 .. t_N as a NumPy float64 array."""
        return np.linspace(self.t0, self.t1, self.num_steps + 1) if self.uniform else self.times

    def time(self, n, dtype):
        """(t_n, dt_n = t_{n+1} - t_n) as tensors of `dtype`, for n = 0 .. N.

        Converted, not cast: a cast would round a Python float through float32.
        """
        if self.uniform:
            dt = ops.convert_to_tensor(self.dt, dtype=dtype)
            return ops.convert_to_tensor(self.t0, dtype=dtype) + ops.cast(n, dtype) * dt, dt
        times = ops.convert_to_tensor(self.times, dtype=dtype)
        t = ops.take(times, n)
        return t, ops.take(times, ops.minimum(n + 1, self.num_steps)) - t  # dt_N = 0: past the last step

    def index(self, times):
        """The grid indices of `times` (each must be a grid time, up to 1e-9 of the interval)."""
        times, grid_times = np.asarray(times, "float64"), self.time_points()
        indices = np.searchsorted(grid_times, times)
        indices = np.clip(indices, 0, self.num_steps)
        nearest = np.where(
            np.abs(grid_times[np.maximum(indices - 1, 0)] - times) < np.abs(grid_times[indices] - times),
            np.maximum(indices - 1, 0),
            indices,
        )
        off = np.abs(grid_times[nearest] - times) > 1e-9 * (self.t1 - self.t0)
        if np.any(off):
            raise ValueError(
                f"SaveAt times must be grid times: build the grid with Grid.through(times, max_step). "
                f"Received: times={times[off].tolist()} not on {self!r}"
            )
        return [int(i) for i in nearest]

    def __repr__(self):
        kind = "" if self.uniform else ", irregular"
        return f"Grid(t0={self.t0}, t1={self.t1}, num_steps={self.num_steps}{kind})"


class SaveAt:
    """Which states a solve returns: h(t1) (the default), all N + 1 grid states (`steps=True`), or the states at `times`.

    Trajectories are time-major: `(num_steps + 1,) + h.shape`, or
    `(len(times),) + h.shape`. The times must be grid times
    (`Grid.through(times, max_step)` makes such a grid).

    Args:
        steps: return every grid state.
        times: sorted 1-D times at which to return the state.
    """

    def __init__(self, steps=False, times=None):
        self.steps = validation.boolean("steps", steps)
        self.times = None if times is None else _sorted_times("times", times, minimum=1)
        if self.steps and self.times is not None:
            raise ValueError(f"Pass steps=True or times, not both. Received: steps=True, times={self.times.tolist()}")

    @property
    def every_step(self):
        """Whether the loop records every state (all of them, or the saved times among them, are returned)."""
        return self.steps or self.times is not None

    def select(self, ys, grid):
        """From the loop's result, what was asked for: the states at `times` when given."""
        if self.times is None:
            return ys
        return ops.take(ys, grid.index(self.times), axis=0)

    def __repr__(self):
        return f"SaveAt(steps={self.steps}, times={None if self.times is None else self.times.tolist()})"


def _sorted_times(name, times, minimum=2):
    try:
        times = np.asarray(times, dtype="float64")
    except (TypeError, ValueError):  # strings, ragged lists, None
        raise ValueError(f"{name} must be a 1-D array of numbers. Received: {name}={times!r}") from None
    if times.ndim != 1 or len(times) < minimum or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ValueError(
            f"{name} must be a 1-D array of at least {minimum} finite, strictly increasing times. "
            f"Received: {name}={times.tolist() if times.ndim <= 1 else times.shape}"
        )
    return times


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

    def finish(self, ys):
        """The solve's result from the loop's (h(t1), or all N + 1 states): the saved times selected."""
        return self.saveat.select(ys, self.grid)


class Solution(NamedTuple):
    """What a solve returns: `ys` (h(t1) or the trajectory, as `SaveAt` asked) and the solver's statistics."""

    ys: object
    stats: dict
