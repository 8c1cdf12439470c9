"""The time loop shared by every solver and gradient method."""

import tensorflow as tf


def integrate(step, h0, num_steps, return_trajectory=False):
    """Applies h_{n+1} = step(h_n, n) for n = 0 .. num_steps - 1.

    The loop is a `tf.while_loop` (a graph loop under `tf.function` and XLA,
    a plain Python loop eagerly), so tracing cost does not grow with N.

    Returns:
        h_N, or all states stacked with shape `(num_steps + 1,) + h0.shape`
        when `return_trajectory` is True.
    """
    if not return_trajectory:
        _, h_final = tf.while_loop(
            lambda n, h: n < num_steps,
            lambda n, h: (n + 1, step(h, n)),
            (tf.constant(0), h0),
            maximum_iterations=num_steps,
        )
        return h_final

    states = tf.TensorArray(h0.dtype, size=num_steps + 1, element_shape=h0.shape)
    states = states.write(0, h0)

    def body(n, h, states):
        h_next = step(h, n)
        return n + 1, h_next, states.write(n + 1, h_next)

    _, _, states = tf.while_loop(
        lambda n, h, states: n < num_steps,
        body,
        (tf.constant(0), h0, states),
        maximum_iterations=num_steps,
    )
    return states.stack()
