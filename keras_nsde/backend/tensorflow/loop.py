"""The time loop on TensorFlow: a `tf.while_loop` (a graph loop under `tf.function` and XLA, a Python loop eagerly)."""

import keras
import tensorflow as tf

from keras_nsde.backend.generic import Records


def loop(body, carry, num_steps, record=None, lookahead=False, unroll=None, stack=True):
    """(carry_N, records) for carry_{n+1} = body(carry_n, n), n = 0 .. num_steps - 1.

    Tracing cost does not grow with N. See `keras_nsde.backend.generic.loop`
    for the arguments. `n` is a loop tensor, never a constant: Grappler would
    constant-fold a seeded draw at a constant index with TensorFlow's kernel,
    whose numbers differ from XLA's. Without `lookahead` the loop runs one
    iteration at a time (`parallel_iterations=1`): backward passes would
    otherwise keep later iterations' draws and temporaries alive; and an
    iteration's index waits for the carry it receives, so work that does not
    read the carry (recomputing a segment from a checkpoint) cannot start
    while the work before the loop that computes the carry holds its own
    temporaries. Records read one at a time (`stack=False`) stay in their
    TensorArrays. `unroll` is ignored.
    """
    parallel_iterations = 10 if lookahead else 1
    if not lookahead:
        body = _after_carry(body)
    if record is None:
        _, final = tf.while_loop(
            lambda n, carry: n < num_steps,
            lambda n, carry: (n + 1, body(carry, n)),
            (tf.constant(0), carry),
            maximum_iterations=num_steps,
            parallel_iterations=parallel_iterations,
        )
        return final, None

    example = record(carry)
    arrays = keras.tree.map_structure(
        lambda x: tf.TensorArray(x.dtype, size=num_steps + 1, element_shape=x.shape, clear_after_read=False), example
    )
    flat_arrays = keras.tree.flatten(arrays)

    def step(n, carry, *flat_arrays):
        values = keras.tree.flatten(record(carry))
        flat_arrays = [array.write(n, value) for array, value in zip(flat_arrays, values)]
        return (n + 1, body(carry, n), *flat_arrays)

    _, final, *flat_arrays = tf.while_loop(
        lambda n, *_: n < num_steps,
        step,
        (tf.constant(0), carry, *flat_arrays),
        maximum_iterations=num_steps,
        parallel_iterations=parallel_iterations,
    )
    flat_arrays = [array.write(num_steps, value) for array, value in zip(flat_arrays, keras.tree.flatten(record(final)))]
    if not stack:
        return final, Records(lambda n: keras.tree.pack_sequence_as(example, [array.read(n) for array in flat_arrays]))
    return final, keras.tree.pack_sequence_as(example, [array.stack() for array in flat_arrays])


def _after_carry(body):
    """`body` whose step index is available only once every tensor of the carry is."""

    def gated(carry, n):
        with tf.control_dependencies(keras.tree.flatten(carry)):
            n = tf.identity(n)
        return body(carry, n)

    return gated
