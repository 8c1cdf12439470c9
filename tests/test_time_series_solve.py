"""Solves for time series, on every backend: irregular grids, states at observation times, the path KL.

The latent SDE (keras_nsde.models.LatentSDE) builds on these: a grid through
the observation times (`Grid.through`), `SaveAt(times=...)`, and the KL
between a posterior and a prior SDE accumulated with the state (`with_path_kl`).
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import MLPDrift, brownian, solvers
from keras_nsde.solvers import Grid, SaveAt, SDETerms
from tests.gradient_checks import max_relative_error
from tests.harness import value_and_gradients

pytestmark = pytest.mark.all_backends

OBSERVATION_TIMES = [0.0, 0.13, 0.5, 0.52, 0.9, 1.0]


def numpy(x):
    return ops.convert_to_numpy(x)


def test_grid_through_times_contains_them_with_steps_at_most_max_step():
    grid = Grid.through(OBSERVATION_TIMES, max_step=0.1)
    times = grid.time_points()
    assert not grid.uniform and grid.num_steps == len(times) - 1
    assert np.all(np.diff(times) <= 0.1 + 1e-12)
    assert np.all(np.isin(np.round(OBSERVATION_TIMES, 12), np.round(times, 12)))
    assert grid.index(OBSERVATION_TIMES) == [int(np.argmin(np.abs(times - t))) for t in OBSERVATION_TIMES]
    assert Grid.through([0.0, 0.25, 0.5, 1.0], max_step=0.25).uniform  # equal steps: the closed form


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: Grid.through([0.0, 0.5, 0.4], 0.1), "times="),
        (lambda: Grid.through([0.0], 0.1), "times="),
        (lambda: Grid.through([0.0, 1.0], 0.0), "max_step="),
        (lambda: SaveAt(times=[[0.0, 1.0]]), "times="),
        (lambda: SaveAt(steps=True, times=[0.5]), "times="),
        (lambda: Grid(0.0, 1.0, 10).index([0.55]), "times="),
    ],
)
def test_bad_times_are_value_errors_naming_them(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


class PosteriorAndPrior(keras.layers.Layer):
    """A posterior drift (MLP), a prior drift (MLP) and a learnable diagonal diffusion g = softplus(a z + b) + 0.1."""

    def __init__(self, dim=3, **kwargs):
        super().__init__(**kwargs)
        self.posterior = MLPDrift(dim, hidden_units=8, hidden_layers=1, name="posterior")
        self.prior = MLPDrift(dim, hidden_units=8, hidden_layers=1, name="prior")

    def build(self, input_shape):
        self.posterior.build(input_shape)
        self.prior.build(input_shape)
        dim = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(dim,), initializer=keras.initializers.Constant(0.3))
        self.offset = self.add_weight(name="offset", shape=(dim,), initializer="zeros")

    def diffusion(self, z, t, f):
        return ops.softplus(self.scale * z + self.offset) + 0.1

    def solve(self, z0, grid, saveat, gradient="autodiff", solver="euler_maruyama", kl=True, noise_seed=(4, 2)):
        terms = SDETerms(lambda z, t: self.posterior(z, t=t), self.diffusion, None, tuple(self.trainable_variables))
        if kl:
            terms, z0 = solvers.with_path_kl(terms, lambda z, t: self.prior(z, t=t)), solvers.append_kl(z0)
        path = brownian.Gaussian().path(
            np.array(noise_seed, "int32"), tuple(z0.shape), z0.dtype, grid.num_steps, grid.step_sizes
        )
        return solvers.solve(terms, solver, path, z0, grid, saveat, gradient).ys


def pair(dim=3):
    keras.utils.set_random_seed(0)
    model = PosteriorAndPrior(dim)
    model.build((None, dim))
    return model


def z0(batch=4, dim=3):
    return ops.convert_to_tensor(np.random.default_rng(1).normal(size=(batch, dim)).astype("float32"))


@pytest.mark.parametrize("solver", ["euler_maruyama", "milstein", "reversible_heun"])
def test_states_at_times_on_a_uniform_grid_equal_the_fixed_grid_solve_there(solver):
    model, h0, grid = pair(), z0(), Grid(0.0, 1.0, 10)
    times = [0.1, 0.4, 0.5, 0.9]
    at_times = model.solve(h0, grid, SaveAt(times=times), solver=solver)
    every_step = model.solve(h0, grid, SaveAt(steps=True), solver=solver)
    np.testing.assert_array_equal(numpy(at_times), numpy(every_step)[[1, 4, 5, 9]])
    through = model.solve(h0, Grid.through([0.0, 0.1, 0.4, 0.5, 0.9, 1.0], max_step=0.1), SaveAt(times=times), solver=solver)
    np.testing.assert_allclose(numpy(through), numpy(at_times), rtol=1e-6, atol=1e-6)


def test_euler_on_an_irregular_grid_takes_each_step_with_its_own_dt_and_increment():
    model, h0 = pair(), z0()
    grid = Grid.through(OBSERVATION_TIMES, max_step=0.1)
    ys = numpy(model.solve(h0, grid, SaveAt(times=OBSERVATION_TIMES), kl=False))
    times, dts = grid.time_points(), grid.step_sizes
    path = brownian.Gaussian().path(np.array([4, 2], "int32"), tuple(h0.shape), "float32", grid.num_steps, dts)
    h, expected = h0, [numpy(h0)]
    for n in range(grid.num_steps):
        t = ops.convert_to_tensor(times[n], "float32")
        f = model.posterior(h, t=t)
        h = h + f * float(dts[n]) + model.diffusion(h, t, f) * path.increment(n)
        expected.append(numpy(h))
    np.testing.assert_allclose(ys, np.stack(expected)[grid.index(OBSERVATION_TIMES)], rtol=1e-5, atol=1e-5)
    increments = numpy(ops.stack([path.increment(n) for n in range(grid.num_steps)]))
    assert np.std(increments[np.argmin(dts)]) < np.std(increments[np.argmax(dts)])  # variance dt_n


@pytest.mark.parametrize(
    "gradient, solver",
    [("pathwise", "euler_maruyama"), ("pathwise", "reversible_heun"), ("reversible", "reversible_heun")],
)
def test_gradients_at_irregular_times_with_the_kl_equal_autodiff(gradient, solver):
    model, h0 = pair(), z0()
    grid, saveat = Grid.through(OBSERVATION_TIMES, max_step=0.1), SaveAt(times=OBSERVATION_TIMES)
    cotangent = np.random.default_rng(2).normal(size=(len(OBSERVATION_TIMES), 4, 4)).astype("float32")

    def loss(method):
        return lambda h: ops.sum(ops.convert_to_tensor(cotangent) * model.solve(h, grid, saveat, method, solver))

    expected = value_and_gradients(loss("autodiff"), model, h0)
    actual = value_and_gradients(loss(gradient), model, h0)
    assert len(actual) == len(model.trainable_variables) + 1
    assert max_relative_error(expected, actual) < 1e-4


def test_path_kl_of_two_ornstein_uhlenbeck_processes_matches_the_closed_form():
    """Posterior dz = -a z dt + s dW, prior dz = -b z dt + s dW, z0 = 1: the KL is (b - a)^2 / (2 s^2) int E[z_t^2] dt."""
    a, b, s, horizon, paths = 2.0, 0.5, 0.5, 1.0, 20000
    terms = solvers.with_path_kl(SDETerms(lambda z, t: -a * z, lambda z, t, f: s * ops.ones_like(z)), lambda z, t: -b * z)
    grid = Grid(0.0, horizon, 200)
    h0 = solvers.append_kl(ops.ones((paths, 1)))
    path = brownian.Gaussian().path(np.array([7, 1], "int32"), (paths, 2), "float32", grid.num_steps, grid.dt)
    _, kl = solvers.split_kl(solvers.solve(terms, "euler_maruyama", path, h0, grid).ys)
    decay = 1.0 - np.exp(-2 * a * horizon)
    second_moment_integral = decay / (2 * a) + s**2 / (2 * a) * (horizon - decay / (2 * a))
    exact = (b - a) ** 2 / (2 * s**2) * second_moment_integral
    assert float(np.mean(numpy(kl))) == pytest.approx(exact, rel=0.02)
