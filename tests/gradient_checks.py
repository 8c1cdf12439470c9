"""Helpers shared by the gradient tests: comparing gradients and making inputs."""

import numpy as np
import tensorflow as tf


def max_relative_error(expected, actual):
    """Largest per-tensor max|e - a| / max|e|.

    A tensor whose exact gradient is (near) zero, such as the bias of a
    convolution that a GroupNorm follows, is measured against 1e-2 of the
    largest gradient instead, so rounding noise around zero does not count
    as a relative error of order one.
    """
    largest = max(float(tf.reduce_max(tf.abs(e))) for e in expected)
    return max(
        float(tf.reduce_max(tf.abs(e - a))) / max(float(tf.reduce_max(tf.abs(e))), 1e-2 * largest)
        for e, a in zip(expected, actual)
    )


def random_tensor(shape, dtype, seed):
    return tf.constant(np.random.default_rng(seed).normal(size=shape), dtype)
