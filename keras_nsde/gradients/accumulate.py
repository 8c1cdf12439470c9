"""One flat accumulator for the weight gradients a backward loop sums over the steps."""

import math

import keras
from keras import ops

WIDTH = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


class FlatGradients:
    """Sums per-step weight gradients as one flat vector, in the widest of the weights' dtypes and float32.

    One concatenated vector keeps each loop iteration to a single two-input
    add. (On TensorFlow, per-variable `total + g`, where g is itself a sum for
    a variable read twice, is rewritten by Grappler into an AddN accumulating
    into a TemporaryVariable, whose resource names collide between iterations
    of nested backward loops on CPUs: tensorflow issues 23780, 33713, 37740.)

        accumulate = FlatGradients(weights)
        total = accumulate.zeros()
        total = total + accumulate.flat(step_grads)     # inside the loop
        per_weight = accumulate.split(total)

    Args:
        weights: the backend's `Weights` of the backward pass (`.values`
            have `.shape` and `.dtype`).
    """

    def __init__(self, weights):
        values = list(weights.values)
        self.shapes = [tuple(value.shape) for value in values]
        self.dtypes = [keras.backend.standardize_dtype(value.dtype) for value in values]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.dtype = max(self.dtypes + ["float32"], key=lambda dtype: WIDTH.get(dtype, 4))  # no float16 sums

    def zeros(self):
        return ops.zeros((sum(self.sizes),), self.dtype)

    def flat(self, grads):
        """One step's gradients, one per weight, as one vector."""
        if not self.sizes:
            return self.zeros()
        return ops.concatenate([ops.reshape(ops.cast(grad, self.dtype), (-1,)) for grad in grads], axis=0)

    def split(self, flat):
        """The accumulated vector as one gradient per weight, in its shape and dtype."""
        grads, offset = [], 0
        for shape, dtype, size in zip(self.shapes, self.dtypes, self.sizes):
            grads.append(ops.cast(ops.reshape(flat[offset : offset + size], shape), dtype))
            offset += size
        return grads
