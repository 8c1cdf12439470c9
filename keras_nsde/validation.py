"""Argument checks shared by every public entry point: one message format, raised before any computation.

    num_steps = validation.integer("num_steps", num_steps, minimum=1)
    sigma = validation.number("sigma", sigma, minimum=0.0)

Each check returns the value as a plain Python `int`, `float` or `bool`
(NumPy scalars are accepted where Python ones are) or raises a `ValueError`,
as Keras' own argument checks do, for a value of the wrong kind (a string,
a float where an int is needed, a bool where a number is needed) or out of
range. The message names the argument and the value received.
"""

import math
import numbers

import keras
import numpy as np


def _received(name, value):
    return f"Received: {name}={value!r}" + (f" of type {type(value).__name__}" if not isinstance(value, str) else "")


def integer(name, value, minimum=None, maximum=None):
    """`value` as an int in [minimum, maximum]; NumPy integers are accepted, bools and floats are not."""
    value = concrete(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int. {_received(name, value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int in {_range(minimum, maximum)}. Received: {name}={value!r}")
    return value


def number(name, value, minimum=None, maximum=None, exclusive_minimum=False, exclusive_maximum=False):
    """`value` as a finite float in the given range; ints and NumPy scalars are accepted, bools and strings are not."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number. {_received(name, value)}")
    value = float(value)
    too_small = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    too_large = maximum is not None and (value >= maximum if exclusive_maximum else value > maximum)
    if not math.isfinite(value) or too_small or too_large:
        interval = _interval(minimum, maximum, exclusive_minimum, exclusive_maximum)
        raise ValueError(f"{name} must be a finite number{interval}. Received: {name}={value!r}")
    return value


def boolean(name, value):
    """`value` as a bool: True, False or a NumPy bool (not a string, int or None)."""
    value = concrete(value)
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False. {_received(name, value)}")
    return bool(value)


def optional_boolean(name, value):
    """None, or `value` as a bool (Keras' `training=None` means "not training")."""
    return None if value is None else boolean(name, value)


def text(name, value):
    """`value` as a str (not bytes, a number or None)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string. {_received(name, value)}")
    return value


def function(name, value):
    """`value` itself if it is callable (a function or a layer)."""
    if not callable(value):
        raise ValueError(f"{name} must be a function. {_received(name, value)}")
    return value


def optional_integer(name, value, minimum=None, maximum=None):
    """None, or `value` as an int in [minimum, maximum]."""
    return None if value is None else integer(name, value, minimum, maximum)


def concrete(value):
    """A 0-D array or concrete 0-D tensor as its NumPy scalar; anything else (a traced tensor too) as it is.

    Keras' `Layer.__call__` turns NumPy call arguments (`training=np.bool_(True)`,
    `noise_seed=np.int64(3)`) into tensors; their values are known eagerly.
    """
    if isinstance(value, np.ndarray) and value.shape == ():
        return value[()]
    if keras.ops.is_tensor(value) and tuple(value.shape) == ():
        try:
            return keras.ops.convert_to_numpy(value)[()]
        except Exception:  # a symbolic or traced tensor has no value yet
            return value
    return value


def _range(minimum, maximum):
    if maximum is None:
        return f"[{minimum}, inf)"
    if minimum is None:
        return f"(-inf, {maximum}]"
    return f"[{minimum}, {maximum}]"


def _interval(minimum, maximum, exclusive_minimum, exclusive_maximum):
    if minimum is None and maximum is None:
        return ""
    low = "(-inf" if minimum is None else ("(" if exclusive_minimum else "[") + repr(minimum)
    high = "inf)" if maximum is None else repr(maximum) + (")" if exclusive_maximum else "]")
    return f" in {low}, {high}"
