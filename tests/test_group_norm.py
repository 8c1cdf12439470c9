import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import GroupNorm
from tests.harness import run_serialization_test


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("groups", [1, 4, 8])
def test_group_norm_equals_keras_group_normalization_in_value_and_gradient(groups, relu):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(loc=1.0, scale=2.0, size=(2, 5, 5, 8)).astype("float32"))
    ours = GroupNorm(groups, relu=relu)
    reference = keras.Sequential([keras.layers.GroupNormalization(groups, epsilon=1e-5)])
    if relu:
        reference.add(keras.layers.ReLU())
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


def test_group_norm_config_round_trip():
    run_serialization_test(GroupNorm(2, epsilon=1e-3, relu=True), np.ones((1, 2, 2, 4), "float32"))


def test_value_error_when_relu_is_not_a_bool():
    with pytest.raises(ValueError, match="relu='yes'"):
        GroupNorm(2, relu="yes")


def test_value_error_when_groups_do_not_divide_channels():
    with pytest.raises(ValueError, match="groups=3"):
        GroupNorm(3).build((None, 4, 4, 8))


def _float64_layers(rng, shape, groups=4):
    ours, reference = GroupNorm(groups, dtype="float64"), keras.layers.GroupNormalization(groups, epsilon=1e-5, dtype="float64")
    weights = [rng.uniform(0.5, 1.5, shape[-1]), rng.normal(size=shape[-1])]
    for layer in (ours, reference):
        layer.build(shape)
        layer.set_weights(weights)
    return ours, reference


def _input_gradient_projection(layer, x):
    """<d/dx sum sin(GN(x)), cos x>: its gradient needs GN's second derivative."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(layer(x)))
    return tf.reduce_sum(tape.gradient(loss, x) * tf.cos(x))


@pytest.mark.parametrize("graph", [False, True])
def test_group_norm_gradient_matches_keras_in_float64(graph):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(loc=0.5, scale=1.5, size=(2, 3, 4, 8)))
    ours, reference = _float64_layers(rng, x.shape)

    def gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x)))
        return [loss] + tape.gradient(loss, [x] + layer.trainable_variables)

    run = tf.function(gradients) if graph else gradients
    for got, want in zip(run(ours), run(reference)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_group_norm_second_derivative_matches_finite_differences():
    # Keras' GroupNormalization fails this: tf.nn.moments stops the gradient
    # through the mean inside the variance, exact only to first order.
    rng = np.random.default_rng(2)
    x = rng.normal(loc=0.5, scale=1.5, size=(1, 2, 3, 4))
    layer, _ = _float64_layers(rng, x.shape, groups=2)
    x_tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        projection = _input_gradient_projection(layer, x_tensor)
    analytic = tape.gradient(projection, x_tensor).numpy()
    step, numeric = 1e-6, np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        offset = np.zeros_like(x)
        offset[index] = step
        plus = _input_gradient_projection(layer, tf.constant(x + offset))
        minus = _input_gradient_projection(layer, tf.constant(x - offset))
        numeric[index] = (plus - minus) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)
