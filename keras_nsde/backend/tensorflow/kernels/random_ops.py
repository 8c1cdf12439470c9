"""Philox uniforms from a vectorised kernel: TensorFlow's `stateless_uniform` numbers, bit for bit.

    philox_uniform(shape, seed, dtype) == tf.random.stateless_uniform(shape, seed, dtype, alg="philox")
    philox_normal(shape, seed, dtype)  == box_muller(philox_uniform([2, ceil(n / 2)], seed, dtype), n, shape)
                                          (n = the shape's size; up to float rounding)

The Brownian increments of a training step are Box-Muller on these uniforms
(`keras_nsde.backend.tensorflow.normal`), one draw of the state's size per
solver step, which `philox_normal` computes in one kernel. TensorFlow's own
kernel runs the ten Philox rounds of one 4-word block at a time,
`philox_uniform_kernels.cc` 16 blocks together as vector instructions. Both
derive the Philox key and counter from the seed with
`StatelessRandomGetKeyCounter`, so a seed gives the same uniforms bit for bit
with or without the kernels (float32), in SavedModels traced with
`portable_ops()`, and on a GPU machine, and the same normals up to float
rounding (relative 1e-6: Eigen's log1p, cos and sin in the kernel, TensorFlow's
ops outside it). Under XLA TensorFlow's op runs (XLA has no custom kernels;
its Philox maps a seed to other numbers).
"""

import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels import kernels_usable, load_kernels

tf.no_gradient("KnsdePhiloxUniform")
tf.no_gradient("KnsdePhiloxNormal")


def philox_uniform(shape, seed, dtype):
    """Uniforms in [0, 1) of `shape` (ints or an int tensor) for a `(2,)` int seed."""
    if tf.as_dtype(dtype) != tf.float32 or not kernels_usable():
        return tf.random.stateless_uniform(shape, seed=seed, dtype=dtype, alg="philox")
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    return load_kernels().knsde_philox_uniform(tf.cast(shape, tf.int64), key, counter)


def philox_normal(shape, seed, dtype):
    """Standard normals of `shape` (an int tensor) for a `(2,)` int seed from one kernel, or None where it cannot run.

    The normals of `box_muller` on `philox_uniform([2, ceil(size / 2)])` (up
    to float rounding in log1p, cos and sin; `keras_nsde.backend.tensorflow.normal`
    runs that twin where this returns None) in one pass over the output, where
    the twin is a Philox kernel and eight element-wise TensorFlow ops.
    """
    if tf.as_dtype(dtype) != tf.float32 or not kernels_usable():
        return None
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    normals = load_kernels().knsde_philox_normal(tf.cast(shape, tf.int64), key, counter)
    return tf.reshape(normals, shape)  # no copy; the static shape as `tf.reshape` infers it (as the twin's does)
