"""The Philox kernels: TensorFlow's stateless uniforms bit for bit, Box-Muller normals on them, and their twins where they cannot run."""

import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import kernels
from keras_nsde.backend import tensorflow as backend
from keras_nsde.backend.generic import box_muller
from keras_nsde.backend.tensorflow.kernels import load_kernels
from keras_nsde.backend.tensorflow.kernels.random_ops import philox_normal, philox_uniform

needs_kernels = pytest.mark.skipif(load_kernels() is None, reason="fused kernels not built here")


# One word, one partial 4-word block, one 64-float pass and one more, a large odd size, empty.
@needs_kernels
@pytest.mark.parametrize("shape", [[1], [7], [64], [65], [2, 230401], [3, 0, 5]])
@pytest.mark.parametrize("seed", [[1, 2], [0, 0], [-5, 123456789], [2**31 - 1, -(2**31)]])
def test_kernel_equals_stateless_uniform_bit_for_bit(shape, seed):
    seed = tf.constant(seed, tf.int32)
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    ours = load_kernels().knsde_philox_uniform(tf.constant(shape, tf.int64), key, counter)
    np.testing.assert_array_equal(ours.numpy(), tf.random.stateless_uniform(shape, seed, alg="philox").numpy())


@needs_kernels
def test_counter_carries_across_its_64_bit_halves():
    key = tf.constant([12345], tf.uint64)
    counter = tf.constant([2**64 - 3, 7], tf.uint64)  # the 4th block carries into the high half
    ours = load_kernels().knsde_philox_uniform(tf.constant([100], tf.int64), key, counter)
    reference = tf.raw_ops.StatelessRandomUniformV2(shape=[100], key=key, counter=counter, alg=1)  # 1: Philox
    np.testing.assert_array_equal(ours.numpy(), reference.numpy())


@needs_kernels
def test_dynamic_shape_in_a_graph_and_the_kernel_is_used():
    seed = tf.constant([3, 4], tf.int32)
    draw = tf.function(lambda x: philox_uniform(tf.shape(x), seed, tf.float32))
    x = tf.zeros((5, 9))
    np.testing.assert_array_equal(draw(x).numpy(), tf.random.stateless_uniform((5, 9), seed, alg="philox").numpy())
    graph = draw.get_concrete_function(tf.TensorSpec((None, 9))).graph
    assert "KnsdePhiloxUniform" in {op.type for op in graph.get_operations()}


def test_float64_and_portable_traces_run_tensorflows_op():
    seed = tf.constant([3, 4], tf.int32)
    np.testing.assert_array_equal(
        philox_uniform([6], seed, tf.float64).numpy(), tf.random.stateless_uniform([6], seed, dtype=tf.float64, alg="philox").numpy()
    )
    with kernels.portable_ops():
        graph = tf.function(lambda: philox_uniform([6], seed, tf.float32)).get_concrete_function().graph
    assert not any(op.type.startswith("Knsde") for op in graph.get_operations())


@needs_kernels
def test_values_are_uniform_on_the_unit_interval():
    draws = philox_uniform([200000], tf.constant([9, 9], tf.int32), tf.float32).numpy()
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.005 and abs(draws.var() - 1 / 12) < 0.002


def _box_muller_twin(shape, seed):
    count = int(np.prod(shape))
    return box_muller(philox_uniform([2, (count + 1) // 2], seed, tf.float32), count, shape).numpy()


# Odd and even sizes, one pair, a size that crosses the kernel's 1024-pair passes (and ends mid-block
# in the second half of the stream), empty.
@needs_kernels
@pytest.mark.parametrize("shape", [[1], [2], [7], [64], [2049], [3, 0, 5], [2, 230401]])
@pytest.mark.parametrize("seed", [[1, 2], [-5, 123456789]])
def test_normal_kernel_equals_box_muller_on_the_uniforms(shape, seed):
    seed = tf.constant(seed, tf.int32)
    ours = philox_normal(tf.constant(shape), seed, tf.float32).numpy()
    assert ours.shape == tuple(shape)
    np.testing.assert_allclose(ours, _box_muller_twin(shape, seed), rtol=1e-6, atol=1e-6)


@needs_kernels
def test_backend_normal_runs_the_normal_kernel_in_graphs_and_its_twin_in_portable_ones():
    seed = tf.constant([3, 4], tf.int32)
    draw = tf.function(lambda x: backend.normal(tf.shape(x), seed, tf.float32))
    graph = draw.get_concrete_function(tf.TensorSpec((None, 9))).graph
    assert "KnsdePhiloxNormal" in {op.type for op in graph.get_operations()}
    with kernels.portable_ops():
        portable = tf.function(lambda x: backend.normal(tf.shape(x), seed, tf.float32))
        portable_graph = portable.get_concrete_function(tf.TensorSpec((None, 9))).graph
        assert not any(op.type.startswith("Knsde") for op in portable_graph.get_operations())
        np.testing.assert_allclose(draw(tf.zeros((5, 9))), portable(tf.zeros((5, 9))), rtol=1e-6, atol=1e-6)
    assert philox_normal([6], seed, tf.float64) is None


@needs_kernels
def test_normal_kernel_draws_standard_normals():
    draws = philox_normal(tf.constant([400001]), tf.constant([9, 9], tf.int32), tf.float32).numpy()
    assert np.all(np.isfinite(draws))
    assert abs(draws.mean()) < 0.01 and abs(draws.var() - 1) < 0.01 and abs(np.mean(draws**4) - 3) < 0.05

