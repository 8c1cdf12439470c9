"""Checks of the evaluation functions' arguments, run before any computation.

Each returns the value as a Python int, float or bool, or raises a
ValueError naming the argument and the value received. NumPy integers and
floats are accepted where Python ones are; bools are not numbers here.
"""

import math
import numbers

import numpy as np


def integer(name, value, minimum=1):
    """An int >= minimum (Python or NumPy)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def optional_integer(name, value, minimum=1):
    """None, or an int >= minimum."""
    return None if value is None else integer(name, value, minimum)


def number(name, value, minimum=0.0, inclusive=True, maximum=None):
    """A finite real number >= minimum (> minimum unless inclusive), <= maximum if given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number. Received: {name}={value!r}")
    if value < minimum or (not inclusive and value == minimum) or (maximum is not None and value > maximum):
        bound = f"{'>=' if inclusive else '>'} {minimum}" + ("" if maximum is None else f" and <= {maximum}")
        raise ValueError(f"{name} must be {bound}. Received: {name}={value!r}")
    return float(value)


def boolean(name, value):
    """True or False (Python or NumPy), not a string or a number."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False. Received: {name}={value!r}")
    return bool(value)


def optional_boolean(name, value):
    return None if value is None else boolean(name, value)


def batch(x, y=None):
    """x as a NumPy array with a batch axis and, if given, y with as many labels."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be a batch of inputs, shape (n, ...). Received: x with shape {x.shape}")
    if y is None:
        return x
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "y must hold one integer label per input, shape (n,) with n = len(x). "
            f"Received: y with shape {y.shape} and dtype {y.dtype} for x with shape {x.shape}"
        )
    return x, y
