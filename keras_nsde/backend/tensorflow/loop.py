"""The time loop shared by every solver and gradient method."""

import tensorflow as tf


def integrate(step, state0, num_steps, return_trajectory=False, output=None):
    """Applies state_{n+1} = step(state_n, n) for n = 0 .. num_steps - 1.

    The loop is a `tf.while_loop` (a graph loop under `tf.function` and XLA,
    a plain Python loop eagerly), so tracing cost does not grow with N.

    Args:
        step: `step(state, n) -> next state`; a state is a tensor or a tuple of tensors.
        state0: the initial state.
        num_steps: N.
        return_trajectory: also keep h_n = output(state_n) for every n.
        output: `output(state) -> h` (default: the state itself).

    Returns:
        h_N, or all h_n stacked with shape `(num_steps + 1,) + h.shape`
        when `return_trajectory` is True.
    """
    output = output or (lambda state: state)
    if not return_trajectory:
        _, final = tf.while_loop(
            lambda n, state: n < num_steps,
            lambda n, state: (n + 1, step(state, n)),
            (tf.constant(0), state0),
            maximum_iterations=num_steps,
        )
        return output(final)

    h0 = output(state0)
    states = tf.TensorArray(h0.dtype, size=num_steps + 1, element_shape=h0.shape)
    states = states.write(0, h0)

    def body(n, state, states):
        state = step(state, n)
        return n + 1, state, states.write(n + 1, output(state))

    _, _, states = tf.while_loop(
        lambda n, state, states: n < num_steps,
        body,
        (tf.constant(0), state0, states),
        maximum_iterations=num_steps,
    )
    return states.stack()
