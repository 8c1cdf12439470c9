"""Forward-mode products on TensorFlow: ForwardAccumulator, with a tape for the reverse half."""

import tensorflow as tf


def weight_jvp(function, variables, direction):
    """(y, dy/dw v) for y = function() reading `variables` (KerasVariables), v = `direction`."""
    with tf.autodiff.ForwardAccumulator([v.value for v in variables], list(direction)) as accumulator:
        y = function()
    return y, accumulator.jvp(y, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def jacobian_products(function, x, v):
    """(J v, J^T J v) for J = d function / dx at x: one evaluation, recorded in both modes."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        with tf.autodiff.ForwardAccumulator(x, v) as accumulator:
            y = function(x)
    jv = accumulator.jvp(y)
    return jv, tape.gradient(y, x, output_gradients=jv)


def input_gradient(loss_fn, x):
    """d loss_fn(x) / dx for a scalar loss (the attacks' gradient hook)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn(x)
    return tape.gradient(loss, x)
