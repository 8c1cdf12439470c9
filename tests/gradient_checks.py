"""Helpers shared by the gradient tests: comparing gradients and making inputs (any backend)."""

import numpy as np
from keras import ops


def max_relative_error(expected, actual):
    """Largest per-tensor max|e - a| / max|e|.

    A tensor whose exact gradient is (near) zero, such as the bias of a
    convolution that a GroupNorm follows, is measured against 1e-2 of the
    largest gradient instead, so rounding noise around zero does not count
    as a relative error of order one.
    """
    expected = [np.asarray(ops.convert_to_numpy(e), "float64") for e in expected]
    actual = [np.asarray(ops.convert_to_numpy(a), "float64") for a in actual]
    largest = max(float(np.max(np.abs(e))) for e in expected)
    return max(
        float(np.max(np.abs(e - a))) / max(float(np.max(np.abs(e))), 1e-2 * largest)
        for e, a in zip(expected, actual)
    )


def random_tensor(shape, dtype, seed):
    return ops.convert_to_tensor(np.random.default_rng(seed).normal(size=tuple(shape)), dtype)
