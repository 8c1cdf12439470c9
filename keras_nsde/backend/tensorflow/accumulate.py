"""What the custom gradients share: pausing the caller's tapes, and one flat weight-gradient accumulator."""

import contextlib

import tensorflow as tf


@contextlib.contextmanager
def tapes_paused():
    """Stops every gradient tape on this thread from recording, for the block's duration.

    Eagerly, a custom-gradient function's forward ops are recorded on the
    caller's tapes, which would keep every step's activations alive; a tape's
    `stop_recording` pauses the whole tape set (graph mode needs no such help).
    """
    with tf.GradientTape() as tape:
        with tape.stop_recording():
            yield


class WeightGradients:
    """Sums per-step weight gradients as one flat vector, in the widest of the variables' dtypes.

    One concatenated vector keeps each loop iteration to a single two-input
    add. Per-variable `acc + g`, where g is itself a sum (a variable read
    twice), is rewritten by Grappler into one AddN with the loop variable as
    an input and then into a TemporaryVariable accumulation, whose resource
    names collide between iterations of nested backward loops on CPUs
    ("AlreadyExistsError ... AddOpsRewrite ... tmp_var", tensorflow issues
    23780, 33713, 37740).

        accumulate = WeightGradients(variables)
        total = accumulate.zeros()
        total = total + accumulate.flat(step_grads)     # inside the loop
        per_variable = accumulate.split(total)
    """

    def __init__(self, variables):
        self.variables = list(variables)
        self.dtype = max((v.dtype for v in self.variables), key=lambda dtype: dtype.size, default=tf.float32)
        self.sizes = [v.shape.num_elements() for v in self.variables]

    def zeros(self):
        return tf.zeros([sum(self.sizes)], self.dtype)

    def flat(self, grads):
        """One step's gradients (None where the step does not read a variable) as one vector."""
        if not self.variables:
            return self.zeros()
        parts = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, self.variables)]
        return tf.concat([tf.reshape(tf.cast(part, self.dtype), [-1]) for part in parts], axis=0)

    def split(self, flat):
        """The accumulated vector as one gradient per variable, in its shape and dtype."""
        if not self.variables:
            return []
        parts = tf.split(flat, self.sizes)
        return [tf.cast(tf.reshape(part, v.shape), v.dtype) for part, v in zip(parts, self.variables)]
