import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import GroupNorm
from tests.harness import run_serialization_test


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_group_norm_equals_keras_group_normalization_in_value_and_gradient(groups):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(loc=1.0, scale=2.0, size=(2, 5, 5, 8)).astype("float32"))
    ours, reference = GroupNorm(groups), keras.layers.GroupNormalization(groups, epsilon=1e-5)
    weights = [rng.uniform(0.5, 1.5, 8).astype("float32"), rng.normal(size=8).astype("float32")]
    for layer in (ours, reference):
        layer.build(x.shape)
        layer.set_weights(weights)
    grads = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.sin(y))
        grads.append((y, tape.gradient(loss, [x] + layer.trainable_variables)))
    np.testing.assert_allclose(grads[0][0], grads[1][0], atol=2e-5)
    for ours_grad, reference_grad in zip(grads[0][1], grads[1][1]):
        np.testing.assert_allclose(ours_grad, reference_grad, rtol=1e-4, atol=1e-4)


def test_group_norm_under_mixed_precision_keeps_float16_output():
    layer = GroupNorm(2, dtype="mixed_float16")
    y = layer(np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32"))
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    np.testing.assert_allclose(np.asarray(y, "float32").reshape(2, -1, 2, 2).mean(axis=(1, 3)), 0.0, atol=2e-3)


def test_group_norm_config_round_trip():
    run_serialization_test(GroupNorm(2, epsilon=1e-3), np.ones((1, 2, 2, 4), "float32"))


def test_value_error_when_groups_do_not_divide_channels():
    with pytest.raises(ValueError, match="groups=3"):
        GroupNorm(3).build((None, 4, 4, 8))
