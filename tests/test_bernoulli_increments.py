import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import SDEBlock, brownian, solvers
from keras_nsde.brownian import SeededBernoulliIncrements, SeededGaussianIncrements
from tests.harness import value_and_gradients
from tests.problems import GeometricBrownianMotion, fitted_order

pytestmark = [pytest.mark.all_backends, pytest.mark.usefixtures("float64_on_jax")]

NUM_PATHS = 400_000


def numpy(x):
    return ops.convert_to_numpy(x)


def simulate(problem, path_type, num_steps, seed=0, **path_kwargs):
    path = path_type(np.array([seed, 1], "int32"), [NUM_PATHS], "float64", num_steps, 1.0 / num_steps, **path_kwargs)
    h0 = np.full([NUM_PATHS], problem.x0, dtype="float64")
    x = solvers.euler_maruyama(problem.drift, problem.diffusion, h0, path)
    assert keras.backend.standardize_dtype(x.dtype) == "float64"
    return numpy(x)


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_standardized_mask_has_mean_zero_variance_one_and_the_documented_skew(keep_prob):
    path = SeededBernoulliIncrements(np.array([4, 2], "int32"), [NUM_PATHS], "float64", 1, 1.0, keep_prob)
    xi = numpy(path.increment(0))
    assert set(np.unique(xi).round(6)) == {round(-np.sqrt(keep_prob / (1 - keep_prob)), 6), round(np.sqrt((1 - keep_prob) / keep_prob), 6)}
    assert xi.mean() == pytest.approx(0.0, abs=0.01)
    assert xi.var() == pytest.approx(1.0, abs=0.01)
    assert (xi**3).mean() == pytest.approx((1 - 2 * keep_prob) / np.sqrt(keep_prob * (1 - keep_prob)), abs=0.05)


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_gbm_moments_converge_at_weak_order_one_with_bernoulli_increments(keep_prob):
    problem = GeometricBrownianMotion(mu=1.0, sigma=0.5)
    levels = [4, 8, 16, 32, 64]  # N = 2 is still pre-asymptotic (exact slope 0.85 over 2..16)
    mean_errors, second_moment_errors = [], []
    for num_steps in levels:
        x = simulate(problem, SeededBernoulliIncrements, num_steps, keep_prob=keep_prob)
        mean_errors.append(abs(x.mean() - problem.mean(1.0)))
        second_moment_errors.append(abs((x**2).mean() - problem.second_moment(1.0)))
    step_sizes = 1.0 / np.array(levels)
    assert fitted_order(step_sizes, mean_errors) == pytest.approx(1.0, abs=0.2)
    assert fitted_order(step_sizes, second_moment_errors) == pytest.approx(1.0, abs=0.2)


def test_nonlinear_expectation_approaches_the_gaussian_schemes_value():
    """E[sin h_T] for dh = (1 - h) dt + 0.8 h dB: skewed masks (p = 0.8) vs Gaussian increments."""

    class Problem(GeometricBrownianMotion):
        def drift(self, h, t):
            return 1.0 - h

    problem = Problem(sigma=0.8)
    gaps = {}
    for num_steps in (2, 32):
        bernoulli = np.sin(simulate(problem, SeededBernoulliIncrements, num_steps, keep_prob=0.8)).mean()
        gaussian = np.sin(simulate(problem, SeededGaussianIncrements, num_steps, seed=7)).mean()
        gaps[num_steps] = abs(bernoulli - gaussian)
    standard_error = 2 * 0.5 / np.sqrt(NUM_PATHS)
    assert gaps[2] > 10 * standard_error
    # The masks' bias in a nonlinear quantity is O(sqrt(dt)) (SeededBernoulliIncrements): 16x the steps, a quarter
    # of the gap, plus the Monte Carlo error of the two estimates (the gaussian numbers differ between backends).
    assert gaps[32] < gaps[2] / 4 + 3 * standard_error


def test_dropout_block_with_bernoulli_increments_is_a_masked_residual_step():
    """At dt = 1 (one step over [0, 1]) h_1 = h_0 + f(h_0) * gamma / p exactly."""
    x = np.random.default_rng(0).normal(size=(64, 6))
    keep_prob = 0.75
    block = SDEBlock(diffusion="dropout", sigma=np.sqrt((1 - keep_prob) / keep_prob), num_steps=1,
                     increments=brownian.Bernoulli(keep_prob), dtype="float64")
    block.build(x.shape)
    seed = block.new_noise_seed()
    xi = numpy(block.brownian_path(ops.convert_to_tensor(x), seed).increment(0))
    mask = (xi * np.sqrt((1 - keep_prob) / keep_prob) + 1.0) * keep_prob
    assert set(np.unique(mask.round(9))) == {0.0, 1.0}
    f = numpy(block.drift_fn(ops.convert_to_tensor(x), ops.convert_to_tensor(0.0, "float64")))
    out = block(x, noise_seed=seed)
    assert keras.backend.standardize_dtype(out.dtype) == "float64"
    np.testing.assert_allclose(numpy(out), x + f * mask / keep_prob, rtol=1e-12)


def test_pathwise_gradient_is_exact_with_bernoulli_increments():
    x = np.random.default_rng(1).normal(size=(3, 5))
    blocks = []
    for gradient in ("autodiff", "pathwise"):
        block = SDEBlock(diffusion="dropout", sigma=0.5, num_steps=4, increments=brownian.Bernoulli(keep_prob=0.7),
                         gradient=gradient, seed=3, dtype="float64")
        block.build(x.shape)
        blocks.append(block)
    blocks[1].set_weights(blocks[0].get_weights())
    grads = []
    for block in blocks:

        def loss(h, block=block):
            return ops.sum(ops.sin(block(h, noise_seed=np.array([5, 6], "int32"))))

        grads.append([numpy(g) for g in value_and_gradients(loss, block, x)])
    assert len(grads[1]) == len(grads[0]) == 1 + len(blocks[0].trainable_variables)
    for a, p in zip(*grads):
        assert a.dtype == np.float64
        np.testing.assert_allclose(p, a, rtol=1e-10, atol=1e-12)
