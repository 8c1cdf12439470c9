"""Reversible Heun and its O(1)-memory reversible gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import SDEBlock, diffusions, gradients, solvers
from tests.custom_diffusion import TanhDiffusion
from tests.gradient_checks import max_relative_error, random_tensor
from tests.problems import GeometricBrownianMotion, OrnsteinUhlenbeck, brownian_increments, coarsen, fitted_order

FINE_STEPS = 1024
NUM_PATHS = 2000


def strong_errors(problem, levels, exact, **solver_kwargs):
    """Mean |x_N - x_exact| on one shared set of Brownian paths for each N in levels."""
    dW_fine = brownian_increments(NUM_PATHS, FINE_STEPS, seed=1)
    solve = tf.function(
        lambda dW: solvers.reversible_heun(
            problem.drift, problem.diffusion, tf.fill([NUM_PATHS], np.float64(problem.x0)), dW, **solver_kwargs
        )
    )
    errors = [np.mean(np.abs(solve(tf.constant(coarsen(dW_fine, FINE_STEPS // n))).numpy() - exact(dW_fine))) for n in levels]
    return np.array([1.0 / n for n in levels]), np.array(errors)


def test_strong_order_is_one_on_additive_ornstein_uhlenbeck():
    problem = OrnsteinUhlenbeck(theta=2.0, sigma=0.5)
    step_sizes, errors = strong_errors(problem, [4, 8, 16, 32, 64], problem.exact)
    assert fitted_order(step_sizes, errors) == pytest.approx(1.0, abs=0.2)  # measured 1.07


def test_strong_order_is_one_on_stratonovich_geometric_brownian_motion():
    """Commutative noise: strong order 1 (0.5 is guaranteed for general noise only)."""
    problem = GeometricBrownianMotion(mu=1.0, sigma=1.0)
    step_sizes, errors = strong_errors(problem, [8, 16, 32, 64, 128], problem.exact_stratonovich)
    assert np.all(np.diff(errors) < 0)
    assert fitted_order(step_sizes, errors) == pytest.approx(1.0, abs=0.2)  # measured 0.94


def test_ito_interpretation_converges_to_the_ito_solution_at_order_one():
    problem = GeometricBrownianMotion(mu=1.0, sigma=1.0)
    kwargs = dict(interpretation="ito", diffusion_derivative_fn=problem.diffusion_derivative)
    step_sizes, errors = strong_errors(problem, [8, 16, 32, 64, 128], problem.exact, **kwargs)
    assert fitted_order(step_sizes, errors) == pytest.approx(1.0, abs=0.2)  # measured 0.91
    # ... and not to the Stratonovich one, which differs by a factor exp(sigma^2 T / 2).
    _, stratonovich_errors = strong_errors(problem, [128], problem.exact_stratonovich, **kwargs)
    assert stratonovich_errors[0] > 20 * errors[-1]


def reconstruction_error(num_steps, dtype):
    """max |h_0 - h_0 rebuilt from h_N by N algebraic reverse steps| on GBM paths."""
    problem = GeometricBrownianMotion(mu=0.5, sigma=0.8)
    solver = solvers.ReversibleHeun()
    terms = solvers.SDETerms(problem.drift, problem.diffusion)
    h0 = tf.constant(np.linspace(0.5, 1.5, 64), dtype)
    path = keras_path(brownian_increments(64, num_steps, dtype=dtype))
    sde = solvers.Problem(terms, path, solvers.Grid(0.0, 1.0, num_steps), solvers.SaveAt())
    state = solver.init(sde, h0)
    for n in range(num_steps):
        state = solver.step(sde, state, n)
    for n in reversed(range(num_steps)):
        state = solver.inverse(sde, state, n)
    return float(tf.reduce_max(tf.abs(state.y - h0) / tf.abs(h0)))


def keras_path(dW):
    from keras_nsde.brownian import GivenIncrements

    return GivenIncrements(tf.constant(dW))


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-4)])
def test_reverse_steps_rebuild_the_initial_state(dtype, tolerance):
    errors = {n: reconstruction_error(n, dtype) for n in (10, 100, 1000)}
    print(f"relative reconstruction error of h_0 ({dtype}) by N: {errors}")
    assert max(errors.values()) < tolerance


STATES = {"conv": (2, 4, 4, 3), "vector": (3, 5)}
DIFFUSIONS = {
    "none": lambda dtype: "none",
    "additive_learnable": lambda dtype: diffusions.Additive(0.3, learnable=True, dtype=dtype),
    "multiplicative": lambda dtype: diffusions.Multiplicative(0.6, dtype=dtype),
    "dropout": lambda dtype: diffusions.Dropout(0.6, dtype=dtype),
    "custom": lambda dtype: TanhDiffusion(0.3, dtype=dtype),
}
TOLERANCE = {"float64": 1e-8, "float32": 1e-4}


def twin_blocks(state, diffusion, dtype, interpretation="stratonovich", **kwargs):
    """An autodiff and a reversible block, both reversible Heun, with the same weights and seed."""
    blocks = []
    for gradient in ("autodiff", "reversible"):
        block = SDEBlock(
            diffusion=DIFFUSIONS[diffusion](dtype), num_steps=6, seed=1, dtype=dtype, gradient=gradient,
            solver=solvers.ReversibleHeun(interpretation), **kwargs,
        )
        block.build((None,) + STATES[state][1:])
        blocks.append(block)
    blocks[1].set_weights(blocks[0].get_weights())
    return blocks


def loss_and_gradients(block, h0, cotangent):
    noise_seed = tf.constant([3, 9]) if block.diffusion.is_noisy else None
    with tf.GradientTape() as tape:
        tape.watch(h0)
        loss = tf.reduce_sum(cotangent * block(h0, noise_seed=noise_seed, training=True))
    return loss, tape.gradient(loss, [h0] + block.trainable_variables)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("state", ["conv", "vector"])
@pytest.mark.parametrize("diffusion", list(DIFFUSIONS))
def test_reversible_gradient_equals_autodiff_through_the_same_solver(diffusion, state, dtype):
    autodiff, reversible = twin_blocks(state, diffusion, dtype)
    h0, cotangent = random_tensor(STATES[state], dtype, 0), random_tensor(STATES[state], dtype, 1)
    loss_a, grads_a = loss_and_gradients(autodiff, h0, cotangent)
    loss_r, grads_r = loss_and_gradients(reversible, h0, cotangent)
    assert len(grads_r) == len(autodiff.trainable_variables) + 1 and all(g is not None for g in grads_r)
    np.testing.assert_allclose(loss_r, loss_a, rtol=TOLERANCE[dtype])
    assert max_relative_error(grads_a, grads_r) < TOLERANCE[dtype]


def test_reversible_gradient_with_the_ito_interpretation_and_a_trajectory_output():
    autodiff, reversible = twin_blocks("vector", "multiplicative", "float64", interpretation="ito", return_trajectory=True)
    h0, cotangent = random_tensor(STATES["vector"], "float64", 0), random_tensor((3, 7, 5), "float64", 1)
    _, grads_a = loss_and_gradients(autodiff, h0, cotangent)
    _, grads_r = loss_and_gradients(reversible, h0, cotangent)
    assert max_relative_error(grads_a, grads_r) < 1e-8


def test_reversible_gradient_inside_tf_function_and_under_xla():
    autodiff, reversible = twin_blocks("conv", "dropout", "float32")
    h0, cotangent = random_tensor(STATES["conv"], "float32", 0), random_tensor(STATES["conv"], "float32", 1)
    for jit_compile in (False, True):  # XLA maps a seed to other numbers: compare XLA with XLA
        _, grads_a = tf.function(loss_and_gradients, jit_compile=jit_compile)(autodiff, h0, cotangent)
        _, grads_r = tf.function(loss_and_gradients, jit_compile=jit_compile)(reversible, h0, cotangent)
        assert max_relative_error(grads_a, grads_r) < 1e-4


def test_gradient_method_objects_round_trip_through_keras_files(tmp_path):
    model = keras.Sequential([
        keras.Input((5,)),
        SDEBlock(diffusion="multiplicative", num_steps=3, solver=solvers.ReversibleHeun("ito"), gradient="reversible", name="block"),
    ])
    x = np.random.default_rng(0).normal(size=(2, 5)).astype("float32")
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    block = restored.get_layer("block")
    assert block.solver == solvers.ReversibleHeun("ito") and block.gradient == gradients.Reversible()
    np.testing.assert_array_equal(restored(x, training=False).numpy(), model(x, training=False).numpy())
