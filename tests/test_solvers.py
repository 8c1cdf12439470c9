import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import solvers
from keras_nsde.brownian import SeededGaussianIncrements
from tests.harness import tensorflow_only
from tests.problems import (
    GeometricBrownianMotion,
    OrnsteinUhlenbeck,
    brownian_increments,
    coarsen,
    fitted_order,
)

pytestmark = [pytest.mark.all_backends, pytest.mark.usefixtures("float64_on_jax")]

FINE_STEPS = 1024


def numpy(x):
    return ops.convert_to_numpy(x)


def strong_errors(problem, levels, num_paths=2000, solver=solvers.euler_maruyama, **solver_kwargs):
    """Mean |x_N - x_exact| on one shared set of Brownian paths for each N in levels."""
    dW_fine = brownian_increments(num_paths, FINE_STEPS, seed=1)
    exact = problem.exact(dW_fine)
    h0 = np.full([num_paths], problem.x0, dtype="float64")
    errors = []
    for num_steps in levels:
        dW = coarsen(dW_fine, FINE_STEPS // num_steps)
        solution = solver(problem.drift, problem.diffusion, h0, ops.convert_to_tensor(dW), **solver_kwargs)
        assert keras.backend.standardize_dtype(solution.dtype) == "float64"
        errors.append(np.mean(np.abs(numpy(solution) - exact)))
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
    h0 = ops.ones([3], dtype=dtype)
    dW = ops.convert_to_tensor(brownian_increments(3, 4, dtype=dtype))
    out = solvers.euler_maruyama(problem.drift, problem.diffusion, h0, dW)
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    assert tuple(out.shape) == tuple(h0.shape)


def trajectory_solver(compile):
    problem = GeometricBrownianMotion(mu=0.3, sigma=0.7)

    def solve(h0, dW):
        return solvers.euler_maruyama(
            problem.drift, problem.diffusion, h0, dW, t0=0.0, t1=2.0, return_trajectory=True
        )

    if compile == "tf_function":
        import tensorflow as tf

        return tf.function(solve)
    return solve


@pytest.mark.parametrize("compile", ["eager", pytest.param("tf_function", marks=tensorflow_only)])
def test_trajectory_matches_hand_written_loop(compile):
    dW = brownian_increments(5, 6, t1=2.0)
    h = np.full(5, 1.5)
    expected = [h]
    for increment in dW:
        h = h + 0.3 * h * (2.0 / 6) + 0.7 * h * increment
        expected.append(h)

    solve = trajectory_solver(compile)
    trajectory = solve(ops.convert_to_tensor(np.full(5, 1.5)), ops.convert_to_tensor(dW))
    assert tuple(trajectory.shape) == (7, 5)
    np.testing.assert_allclose(numpy(trajectory), np.stack(expected), rtol=1e-12)


def cos(t):
    """cos in t's dtype. On JAX keras.ops.cos computes float64 in float32 (keras.backend.result_type maps
    float64 to float32 on every backend but TensorFlow, even with JAX's 64-bit mode on): jax.numpy.cos there."""
    if keras.backend.backend() == "jax":
        import jax.numpy as jnp

        return jnp.cos(t)
    return ops.cos(t)


def test_no_diffusion_is_plain_euler_with_time_dependent_drift():
    def drift(h, t):
        assert keras.backend.standardize_dtype(t.dtype) == "float64"
        return cos(t) * h

    out = solvers.euler_maruyama(
        drift, None, ops.convert_to_tensor([2.0], "float64"), None, t0=0.5, t1=1.5, num_steps=4
    )
    h, dt = 2.0, 0.25
    for n in range(4):
        h = h + np.cos(0.5 + n * dt) * h * dt
    np.testing.assert_allclose(numpy(out), [h], rtol=1e-12)


def test_accepts_a_seeded_brownian_path():
    problem = GeometricBrownianMotion()
    path = SeededGaussianIncrements(np.array([3, 4], "int32"), [6], "float64", num_steps=5, dt=0.2)
    from_path = solvers.euler_maruyama(problem.drift, problem.diffusion, ops.ones([6], "float64"), path)
    from_tensor = solvers.euler_maruyama(
        problem.drift, problem.diffusion, ops.ones([6], "float64"), path.all_increments()
    )
    assert np.abs(numpy(from_path) - 1.0).max() > 1e-3  # the noise moved the state
    np.testing.assert_allclose(numpy(from_path), numpy(from_tensor), rtol=1e-14)


def test_value_error_when_t1_is_not_after_t0():
    problem = GeometricBrownianMotion()
    with pytest.raises(ValueError, match="t1=1.0"):
        solvers.euler_maruyama(problem.drift, problem.diffusion, ops.ones([2]), ops.zeros([3, 2]), t0=1.0, t1=1.0)


def test_value_error_when_num_steps_is_zero():
    with pytest.raises(ValueError, match="num_steps=0"):
        solvers.euler_maruyama(lambda h, t: h, None, ops.ones([2]), None, num_steps=0)


def test_value_error_when_h0_is_not_floating():
    with pytest.raises(ValueError, match="h0.dtype=int32"):
        solvers.euler_maruyama(lambda h, t: h, None, ops.ones([2], "int32"), None, num_steps=2)
