import numpy as np
import tensorflow as tf

from keras_nsde.brownian import GivenIncrements, SeededGaussianIncrements


def test_increments_have_mean_zero_and_variance_dt():
    dt = 0.05
    path = SeededGaussianIncrements(tf.constant([7, 11]), [20000], "float64", num_steps=4, dt=dt)
    dW = path.all_increments().numpy()
    # Standard errors: mean sqrt(dt / n) ~ 0.0008, variance dt sqrt(2 / n) ~ 0.0005.
    np.testing.assert_allclose(dW.mean(axis=1), 0.0, atol=5 * np.sqrt(dt / 20000))
    np.testing.assert_allclose(dW.var(axis=1), dt, atol=5 * dt * np.sqrt(2 / 20000))


def test_steps_are_independent_and_replayable():
    path = SeededGaussianIncrements(tf.constant([1, 2]), [5000], "float32", num_steps=3, dt=1.0)
    replay = SeededGaussianIncrements(tf.constant([1, 2]), [5000], "float32", num_steps=3, dt=1.0)
    first, second = path.increment(0).numpy(), path.increment(1).numpy()
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.05
    np.testing.assert_array_equal(replay.increment(1).numpy(), second)


def test_other_seed_gives_other_path():
    one = SeededGaussianIncrements(tf.constant([1, 2]), [100], "float32", num_steps=1, dt=1.0)
    other = SeededGaussianIncrements(tf.constant([1, 3]), [100], "float32", num_steps=1, dt=1.0)
    assert not np.allclose(one.increment(0), other.increment(0))


def test_given_increments_index_the_first_axis():
    dW = np.arange(12.0).reshape(3, 4)
    path = GivenIncrements(dW)
    assert path.num_steps == 3
    np.testing.assert_array_equal(path.increment(2).numpy(), dW[2])


def test_gaussian_increments_are_normal_and_pairs_independent():
    from scipy import stats

    path = SeededGaussianIncrements(tf.constant([5, 6]), [100_001], "float64", num_steps=2, dt=0.25)
    z = path.increment(1).numpy() / 0.5
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(stats.kurtosis(z)) < 0.1  # standard error ~0.015
    # Box-Muller pairs (cos, sin halves) must be independent, not just uncorrelated.
    first, second = z[:50_000], z[50_001:]
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.02
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < 0.02


def test_gaussian_increments_take_dynamic_odd_shapes_and_half_precision():
    odd = SeededGaussianIncrements(tf.constant([1, 2]), tf.constant([3, 5]), "float32", num_steps=1, dt=1.0)
    assert odd.increment(0).shape == (3, 5)
    half = SeededGaussianIncrements(tf.constant([1, 2]), [4000], "float16", num_steps=1, dt=0.04)
    dW = half.increment(0).numpy().astype("float64")
    assert half.increment(0).dtype == tf.float16
    np.testing.assert_allclose(dW.var(), 0.04, rtol=0.1)
