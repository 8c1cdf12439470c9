"""Custom gradients on TensorFlow: `tf.custom_gradient` over h0, the weights it reads found by TensorFlow."""

import contextlib

import tensorflow as tf

from keras_nsde.backend.generic import Weights, stateless


def custom_vjp(forward, backward, variables):
    """A function of h0 whose backward pass is `backward`, the weights `variables` read passed explicitly.

    As on JAX and PyTorch, the forward pass reads each variable through a
    `keras.StatelessScope` as the value it had when the function was called
    (under a mixed-precision policy, its float16 copy), and the backward pass
    differentiates with respect to those values, so both passes compute with
    the same numbers. `forward(h0) -> (output, residuals)` runs with every
    tape paused (only what it returns is kept); `backward(residuals, upstream,
    weights) -> (dL/dh0, [dL/dw per weight])`. TensorFlow asks for the
    gradients of the variables it saw read (`grad_fn(*upstream,
    variables=None)`); they are the values' gradients in the variables' dtypes.
    """
    variables = list(variables)

    @tf.custom_gradient
    def function(h0):
        weights = Weights(variables, [v.value for v in variables])
        with tapes_paused():
            output, residuals = stateless(lambda: forward(h0), variables)(*weights.values)

        def grad_fn(upstream, variables=None):
            upstream = tf.convert_to_tensor(upstream)  # dense: a gather's gradient arrives as IndexedSlices
            grad_h0, grads = backward(residuals, upstream, weights)
            by_variable = {_key(v): grad for v, grad in zip(weights.variables, grads)}
            return grad_h0, [tf.cast(by_variable[v.ref()], v.dtype) for v in variables or []]

        return output, grad_fn

    return function


def vjp(function, x, weights, cotangent):
    """(function(x), cotangent . d function/dx, [cotangent . d function/dw]) on a tape; zeros where unconnected.

    Each leaf of x is watched as a tensor of its own (an identity): a tape
    would give one tensor that fills two leaves (y = y^ = h0 in reversible
    Heun's first state) the sum of both leaves' gradients in each.
    """
    x = tf.nest.map_structure(tf.identity, x)
    values = list(weights.values)
    with tf.GradientTape() as tape:
        tape.watch(x)
        tape.watch(values)
        outputs = stateless(lambda: function(x), weights.variables)(*values)
    grad_x, grad_values = tape.gradient(
        outputs, (x, values), output_gradients=cotangent, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    return outputs, grad_x, list(grad_values)


def _key(variable):
    """The key of the tf.Variable behind a Keras variable (its value, read outside any autocast scope)."""
    value = variable.value
    if not isinstance(value, tf.Variable):
        raise RuntimeError(
            f"The gradient of {variable.path!r} was asked for inside an autocast scope. Compute gradients outside "
            "layer calls (as Keras' trainers do)."
        )
    return value.ref()


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

