"""Test-time noise (TTN): average the softmax of several noisy passes."""

import contextlib

import numpy as np
import tensorflow as tf

from keras_nsde.layers.sde_block import SDEBlock


@contextlib.contextmanager
def noise_at_inference(model, enabled=True):
    """Within the block, every SDEBlock of `model` keeps its noise on at inference.

    It sets `test_time_noise` on each block and restores it on exit. A
    function traced inside the block sees the noise; functions traced before
    it (such as the one `model.predict` caches) do not.
    """
    # Keras has no public recursive layer walk; _flatten_layers is the one it uses itself.
    blocks = [layer for layer in model._flatten_layers() if isinstance(layer, SDEBlock)]
    if not blocks:
        raise ValueError(f"model contains no SDEBlock. Received: model={model.name!r}")
    saved = [block.test_time_noise for block in blocks]
    for block in blocks:
        block.test_time_noise = enabled
    try:
        yield blocks
    finally:
        for block, value in zip(blocks, saved):
            block.test_time_noise = value


def ensemble_predict(model, x, samples=100, batch_size=None, from_logits=True):
    """Mean class probabilities over `samples` noisy forward passes.

        p(y | x) = (1 / S) sum_s softmax(model(x; B_s))

    The S passes of a batch run as one pass over the batch tiled S times
    (each copy draws its own Brownian path), not as S Python-level calls.

    Args:
        model: a Keras model containing SDE blocks, returning logits (or
            probabilities with `from_logits=False`).
        x: images, `(n, ...)`.
        samples: S >= 1.
        batch_size: images per pass (the pass holds batch_size * S rows);
            None picks max(1, 2048 // S).
        from_logits: apply a softmax to the model's outputs.

    Returns:
        NumPy array `(n, num_classes)` of averaged probabilities.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1. Received: samples={samples!r}")
    batch_size = batch_size or max(1, 2048 // samples)
    with noise_at_inference(model):

        @tf.function(reduce_retracing=True)
        def mean_probabilities(batch):
            tiled = tf.repeat(batch, samples, axis=0)
            outputs = tf.cast(model(tiled, training=False), "float32")
            probabilities = tf.nn.softmax(outputs) if from_logits else outputs
            return tf.reduce_mean(tf.reshape(probabilities, [-1, samples, outputs.shape[-1]]), axis=1)

        x = np.asarray(x)
        return np.concatenate(
            [mean_probabilities(tf.constant(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
        )
