"""Seeded and given Brownian increments, on every backend (each draws its own numbers from a seed)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_nsde import SDEBlock
from keras_nsde.brownian import GivenIncrements, SeededGaussianIncrements
from tests.harness import tensorflow_only

pytestmark = pytest.mark.all_backends

WIDE = "float32" if keras.backend.backend() == "jax" else "float64"  # JAX runs without 64-bit types by default


def seed(a, b):
    return np.array([a, b], "int32")


def numpy(x):
    return ops.convert_to_numpy(x)


def test_increments_have_mean_zero_and_variance_dt():
    dt = 0.05
    path = SeededGaussianIncrements(seed(7, 11), [20000], WIDE, num_steps=4, dt=dt)
    dW = numpy(path.all_increments()).astype("float64")
    # Standard errors: mean sqrt(dt / n) ~ 0.0008, variance dt sqrt(2 / n) ~ 0.0005.
    np.testing.assert_allclose(dW.mean(axis=1), 0.0, atol=5 * np.sqrt(dt / 20000))
    np.testing.assert_allclose(dW.var(axis=1), dt, atol=5 * dt * np.sqrt(2 / 20000))


def test_steps_are_independent_and_replayable():
    path = SeededGaussianIncrements(seed(1, 2), [5000], "float32", num_steps=3, dt=1.0)
    replay = SeededGaussianIncrements(seed(1, 2), [5000], "float32", num_steps=3, dt=1.0)
    first, second = numpy(path.increment(0)), numpy(path.increment(1))
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.05
    np.testing.assert_array_equal(numpy(replay.increment(1)), second)


def test_other_seed_gives_other_path():
    one = SeededGaussianIncrements(seed(1, 2), [100], "float32", num_steps=1, dt=1.0)
    other = SeededGaussianIncrements(seed(1, 3), [100], "float32", num_steps=1, dt=1.0)
    assert not np.allclose(numpy(one.increment(0)), numpy(other.increment(0)))


def test_blocks_seeded_s_and_s_plus_1_draw_independent_paths_call_after_call():
    """Every pair among 4 calls of a block seeded s and 4 of one seeded s + 1 is uncorrelated (no shifted replay)."""
    shape, num_steps = (64, 32), 4
    paths = []
    for seed_value in (5, 6):
        block = SDEBlock(diffusion="additive", num_steps=num_steps, seed=seed_value)
        block.build((None, shape[1]))
        for _ in range(4):
            path = block.brownian_path(ops.zeros(shape))
            paths.append(numpy(ops.stack([path.increment(n) for n in range(num_steps)])).reshape(-1))
    correlations = np.corrcoef(np.stack(paths))
    off_diagonal = correlations[~np.eye(len(paths), dtype=bool)]
    assert np.abs(off_diagonal).max() < 5 / np.sqrt(paths[0].size)  # about 0.055 for 8192 numbers


def test_given_increments_index_the_first_axis():
    dW = np.arange(12.0).reshape(3, 4).astype("float32")
    path = GivenIncrements(dW)
    assert path.num_steps == 3
    np.testing.assert_array_equal(numpy(path.increment(2)), dW[2])


def test_gaussian_increments_are_normal_and_pairs_independent():
    from scipy import stats

    path = SeededGaussianIncrements(seed(5, 6), [100_001], WIDE, num_steps=2, dt=0.25)
    z = numpy(path.increment(1)).astype("float64") / 0.5
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(stats.kurtosis(z)) < 0.1  # standard error ~0.015
    # Box-Muller pairs (cos, sin halves) must be independent, not just uncorrelated.
    first, second = z[:50_000], z[50_001:]
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.02
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < 0.02


def test_gaussian_increments_take_odd_shapes_and_half_precision():
    odd = SeededGaussianIncrements(seed(1, 2), [3, 5], "float32", num_steps=1, dt=1.0)
    assert tuple(odd.increment(0).shape) == (3, 5)
    half = SeededGaussianIncrements(seed(1, 2), [4000], "float16", num_steps=1, dt=0.04)
    assert keras.backend.standardize_dtype(half.increment(0).dtype) == "float16"
    np.testing.assert_allclose(numpy(half.increment(0)).astype("float64").var(), 0.04, rtol=0.1)


@tensorflow_only
def test_gaussian_increments_take_a_dynamic_shape_tensor():
    import tensorflow as tf

    odd = SeededGaussianIncrements(seed(1, 2), tf.constant([3, 5]), "float32", num_steps=1, dt=1.0)
    assert odd.increment(0).shape == (3, 5)
