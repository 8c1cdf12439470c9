import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import solvers
from keras_nsde.brownian import SeededGaussianIncrements
from tests.problems import (
    GeometricBrownianMotion,
    OrnsteinUhlenbeck,
    brownian_increments,
    coarsen,
    fitted_order,
)

FINE_STEPS = 1024


def strong_errors(problem, levels, num_paths=2000, solver=solvers.euler_maruyama, **solver_kwargs):
    """Mean |x_N - x_exact| on one shared set of Brownian paths for each N in levels."""
    dW_fine = brownian_increments(num_paths, FINE_STEPS, seed=1)
    exact = problem.exact(dW_fine)
    solve = tf.function(
        lambda dW: solver(
            problem.drift, problem.diffusion, tf.fill([num_paths], np.float64(problem.x0)), dW, **solver_kwargs
        )
    )
    errors = []
    for num_steps in levels:
        dW = coarsen(dW_fine, FINE_STEPS // num_steps)
        errors.append(np.mean(np.abs(solve(tf.constant(dW)).numpy() - exact)))
    return np.array([1.0 / n for n in levels]), np.array(errors)


def test_strong_order_is_half_on_geometric_brownian_motion():
    step_sizes, errors = strong_errors(GeometricBrownianMotion(mu=1.0, sigma=1.0), [8, 16, 32, 64, 128])
    assert np.all(np.diff(errors) < 0)
    assert fitted_order(step_sizes, errors) == pytest.approx(0.5, abs=0.15)


def test_strong_order_is_one_on_additive_ornstein_uhlenbeck():
    step_sizes, errors = strong_errors(OrnsteinUhlenbeck(theta=2.0, sigma=0.5), [4, 8, 16, 32, 64])
    assert fitted_order(step_sizes, errors) == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_output_follows_dtype_of_h0(dtype):
    problem = GeometricBrownianMotion()
    h0 = tf.ones([3], dtype=dtype)
    dW = tf.constant(brownian_increments(3, 4, dtype=dtype))
    out = solvers.euler_maruyama(problem.drift, problem.diffusion, h0, dW)
    assert out.dtype == tf.as_dtype(dtype)
    assert out.shape == h0.shape


def test_trajectory_matches_hand_written_loop_eagerly_and_in_tf_function():
    problem = GeometricBrownianMotion(mu=0.3, sigma=0.7)
    dW = brownian_increments(5, 6, t1=2.0)
    h = np.full(5, 1.5)
    expected = [h]
    for increment in dW:
        h = h + 0.3 * h * (2.0 / 6) + 0.7 * h * increment
        expected.append(h)

    def solve(h0, dW):
        return solvers.euler_maruyama(
            problem.drift, problem.diffusion, h0, dW, t0=0.0, t1=2.0, return_trajectory=True
        )

    for fn in (solve, tf.function(solve)):
        trajectory = fn(tf.constant(np.full(5, 1.5)), tf.constant(dW))
        assert trajectory.shape == (7, 5)
        np.testing.assert_allclose(trajectory.numpy(), np.stack(expected), rtol=1e-12)


def test_no_diffusion_is_plain_euler_with_time_dependent_drift():
    def drift(h, t):
        return tf.cos(t) * h

    out = solvers.euler_maruyama(drift, None, tf.constant([2.0], "float64"), None, t0=0.5, t1=1.5, num_steps=4)
    h, dt = 2.0, 0.25
    for n in range(4):
        h = h + np.cos(0.5 + n * dt) * h * dt
    np.testing.assert_allclose(out.numpy(), [h], rtol=1e-12)


def test_accepts_a_seeded_brownian_path():
    problem = GeometricBrownianMotion()
    path = SeededGaussianIncrements(tf.constant([3, 4]), [6], "float64", num_steps=5, dt=0.2)
    from_path = solvers.euler_maruyama(problem.drift, problem.diffusion, tf.ones([6], "float64"), path)
    from_tensor = solvers.euler_maruyama(
        problem.drift, problem.diffusion, tf.ones([6], "float64"), path.all_increments()
    )
    np.testing.assert_allclose(from_path.numpy(), from_tensor.numpy(), rtol=1e-14)


def test_value_error_when_t1_is_not_after_t0():
    problem = GeometricBrownianMotion()
    with pytest.raises(ValueError, match="t1=1.0"):
        solvers.euler_maruyama(problem.drift, problem.diffusion, tf.ones([2]), tf.zeros([3, 2]), t0=1.0, t1=1.0)


def test_value_error_when_num_steps_is_zero():
    with pytest.raises(ValueError, match="num_steps=0"):
        solvers.euler_maruyama(lambda h, t: h, None, tf.ones([2]), None, num_steps=0)


def test_value_error_when_h0_is_not_floating():
    with pytest.raises(ValueError, match="h0.dtype=int32"):
        solvers.euler_maruyama(lambda h, t: h, None, tf.ones([2], "int32"), None, num_steps=2)
