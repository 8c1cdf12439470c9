"""Custom gradients on TensorFlow: `tf.custom_gradient` over h0, the weights it reads found by TensorFlow."""

import contextlib

import tensorflow as tf

from keras_nsde.backend.generic import Weights


def custom_vjp(forward, backward, variables):
    """A function of h0 whose backward pass is `backward`.

    `forward(h0) -> (output, residuals)` runs with every tape paused (only
    what it returns is kept); `backward(residuals, upstream, weights) ->
    (dL/dh0, [dL/dw per weight])`, where `weights` holds the variables
    TensorFlow saw the forward pass read (`grad_fn(*upstream,
    variables=None)`); the `variables` argument is not needed here.
    """

    @tf.custom_gradient
    def function(h0):
        with tapes_paused():
            output, residuals = forward(h0)

        def grad_fn(upstream, variables=None):
            variables = list(variables or [])
            return backward(residuals, upstream, Weights(variables, variables))

        return output, grad_fn

    return function


def vjp(function, x, weights, cotangent):
    """(function(x), cotangent . d function/dx, [cotangent . d function/dw]) on a tape; zeros where unconnected."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = function(x)
    grad_x, grad_weights = tape.gradient(
        outputs, (x, list(weights.values)), output_gradients=cotangent, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    return outputs, grad_x, list(grad_weights)


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

