"""Philox uniforms from a vectorised kernel: TensorFlow's `stateless_uniform` numbers, bit for bit.

    philox_uniform(shape, seed, dtype) == tf.random.stateless_uniform(shape, seed, dtype, alg="philox")

The Brownian increments of a training step are Box-Muller on these uniforms
(`keras_nsde.backend.tensorflow.normal`), one draw of the state's size per
solver step; TensorFlow's own kernel runs the ten Philox rounds of one
4-word block at a time, `philox_uniform_kernels.cc` 16 blocks together as
vector instructions. Both derive the Philox key and counter from the seed
with `StatelessRandomGetKeyCounter`, so a seed gives the same path with or
without the kernels (float32), in SavedModels traced with `portable_ops()`,
and on a GPU machine. Under XLA TensorFlow's op runs (XLA has no custom
kernels; its Philox maps a seed to other numbers).
"""

import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels import kernels_usable, load_kernels

tf.no_gradient("KnsdePhiloxUniform")


def philox_uniform(shape, seed, dtype):
    """Uniforms in [0, 1) of `shape` (ints or an int tensor) for a `(2,)` int seed."""
    if tf.as_dtype(dtype) != tf.float32 or not kernels_usable():
        return tf.random.stateless_uniform(shape, seed=seed, dtype=dtype, alg="philox")
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    return load_kernels().knsde_philox_uniform(tf.cast(shape, tf.int64), key, counter)
