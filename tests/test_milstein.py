import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import SDEBlock, solvers
from tests.problems import GeometricBrownianMotion, OrnsteinUhlenbeck, brownian_increments, fitted_order
from tests.test_solvers import strong_errors

pytestmark = [pytest.mark.all_backends, pytest.mark.usefixtures("float64_on_jax")]

LEVELS = [8, 16, 32, 64, 128]


def numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("form", ["closed_form_derivative", "derivative_free"])
def test_milstein_strong_order_is_one_on_gbm_where_euler_is_half(form):
    problem = GeometricBrownianMotion(mu=1.0, sigma=1.0)
    derivative = problem.diffusion_derivative if form == "closed_form_derivative" else None
    step_sizes, milstein_errors = strong_errors(
        problem, LEVELS, solver=solvers.milstein, diffusion_derivative_fn=derivative
    )
    _, euler_errors = strong_errors(problem, LEVELS)
    assert fitted_order(step_sizes, milstein_errors) == pytest.approx(1.0, abs=0.2)
    assert fitted_order(step_sizes, euler_errors) == pytest.approx(0.5, abs=0.15)
    assert np.all(milstein_errors < euler_errors)


def test_milstein_equals_euler_for_additive_noise():
    problem = OrnsteinUhlenbeck()
    h0, dW = ops.ones([4], "float64"), ops.convert_to_tensor(brownian_increments(4, 8))
    euler = solvers.euler_maruyama(problem.drift, problem.diffusion, h0, dW)
    milstein = solvers.milstein(problem.drift, problem.diffusion, h0, dW)
    assert keras.backend.standardize_dtype(milstein.dtype) == "float64"
    np.testing.assert_allclose(numpy(milstein), numpy(euler), rtol=1e-12)


@pytest.mark.parametrize("diffusion", ["none", "additive", "multiplicative", "dropout"])
def test_block_with_milstein_runs_every_diffusion(diffusion):
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    block = SDEBlock(diffusion=diffusion, solver="milstein", num_steps=3)
    out = block(x, training=True)
    assert tuple(out.shape) == x.shape and np.all(np.isfinite(numpy(out)))


def test_block_milstein_uses_the_closed_form_for_multiplicative_noise():
    x = np.random.default_rng(0).normal(size=(3, 5))
    block = SDEBlock(diffusion="multiplicative", sigma=0.7, solver="milstein", num_steps=4, dtype="float64")
    block.build(x.shape)
    seed = block.new_noise_seed()
    dW = block.brownian_path(ops.convert_to_tensor(x), seed).all_increments()
    expected = solvers.milstein(
        block.drift_fn, block.diffusion_fn, x, dW, diffusion_derivative_fn=lambda h, t, f: 0.7 * ops.ones_like(h)
    )
    assert keras.backend.standardize_dtype(expected.dtype) == "float64"
    np.testing.assert_allclose(numpy(block(x, noise_seed=seed)), numpy(expected), rtol=1e-12)
