import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import GroupNorm
from keras_nsde import kernels
from keras_nsde.backend.tensorflow.kernels import group_norm_ops, load_kernels

needs_kernels = pytest.mark.skipif(load_kernels() is None, reason="fused kernels not built here")


def _primitive_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    big = [tf.constant(rng.normal(size=shape).astype("float32")) for _ in range(2)]
    small = [tf.constant(rng.normal(size=(shape[0], shape[-1])).astype("float32")) for _ in range(5)]
    return big, small


@needs_kernels
@pytest.mark.parametrize("shape", [(3, 5, 7, 8), (1, 9, 9, 64)])  # 81 pixels: more than one 64-pixel chunk
@pytest.mark.parametrize("relu", [False, True])
def test_each_kernel_equals_its_tensorflow_twin(shape, relu):
    (dy, x), (scale, shift, a, b, c) = _primitive_inputs(shape)
    pairs = [
        (group_norm_ops.channel_moments(x, True), group_norm_ops.channel_moments(x, False)),
        (group_norm_ops.affine(x, scale, shift, relu, True), group_norm_ops.affine(x, scale, shift, relu, False)),
        (
            group_norm_ops.masked_channel_sums(dy, x, scale, shift, relu, True),
            group_norm_ops.masked_channel_sums(dy, x, scale, shift, relu, False),
        ),
        (
            group_norm_ops.affine_combine(dy, x, (scale, shift), (a, b, c), relu, True),
            group_norm_ops.affine_combine(dy, x, (scale, shift), (a, b, c), relu, False),
        ),
    ]
    for fused, twin in pairs:
        np.testing.assert_allclose(fused, twin, rtol=1e-5, atol=1e-5)


@needs_kernels
def test_kernel_gradients_are_their_twins_gradients():
    (dy, x), (scale, shift, a, b, c) = _primitive_inputs((2, 3, 4, 8), seed=1)
    inputs = [dy, x, scale, shift, a, b, c]

    def gradients(fused):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            out = group_norm_ops.affine_combine(dy, x, (scale, shift), (a, b, c), relu=True, fused=fused)
            sums = group_norm_ops.masked_channel_sums(dy, x, scale, shift, relu=True, fused=fused)
            loss = tf.reduce_sum(tf.sin(out)) + tf.reduce_sum(sums[0] * sums[1])
        return tape.gradient(loss, inputs, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    for fused, twin in zip(gradients(True), gradients(False)):
        np.testing.assert_allclose(fused, twin, rtol=1e-4, atol=1e-4)


@needs_kernels
def test_kernels_name_the_argument_with_a_wrong_shape():
    (_, x), (scale, shift, *_) = _primitive_inputs((2, 3, 3, 4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="shift must have shape \\(2, 4\\)"):
        group_norm_ops.affine(x, scale, shift[:1], relu=True, fused=True)


@needs_kernels
def test_fused_group_norm_second_derivative_equals_float64():
    # The float32 layer runs on the kernels, the float64 one on TF ops whose
    # second derivatives tests/test_group_norm.py checks by finite differences.
    rng = np.random.default_rng(3)
    x = rng.normal(loc=0.5, scale=1.5, size=(2, 3, 4, 8))
    weights = [rng.uniform(0.5, 1.5, 8), rng.normal(size=8)]
    results = []
    for dtype in ("float32", "float64"):
        layer = GroupNorm(4, relu=True, dtype=dtype)
        layer.build(x.shape)
        layer.set_weights([w.astype(dtype) for w in weights])
        x_tensor = tf.constant(x, dtype)
        with tf.GradientTape() as outer:
            outer.watch(x_tensor)
            with tf.GradientTape() as inner:
                inner.watch(x_tensor)
                loss = tf.reduce_sum(tf.sin(layer(x_tensor)))
            projection = tf.reduce_sum(inner.gradient(loss, x_tensor) * tf.cos(x_tensor))
        results.append(outer.gradient(projection, x_tensor).numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-3, atol=1e-4)


def test_group_norm_runs_inside_xla_functions():
    layer = GroupNorm(2, relu=True)
    x = tf.constant(np.random.default_rng(4).normal(size=(2, 4, 4, 4)).astype("float32"))
    layer.build(x.shape)

    def value_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, x)

    for got, want in zip(tf.function(value_and_gradient, jit_compile=True)(x), value_and_gradient(x)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@needs_kernels
def test_portable_ops_and_saved_model_saving_trace_tensorflow_ops_only(tmp_path):
    layer = GroupNorm(4, relu=True)
    layer.build((None, 4, 4, 8))

    def op_types(**trace_options):
        graph = tf.function(layer).get_concrete_function(tf.TensorSpec((1, 4, 4, 8)), **trace_options).graph
        return {op.type for op in graph.get_operations()}

    assert "KnsdeAffineRelu" in op_types()
    with kernels.portable_ops():
        assert not any(op_type.startswith("Knsde") for op_type in op_types())
    assert "KnsdeAffineRelu" in op_types()  # the block restores the default

    module = tf.Module()
    module.layer = layer  # tracks the weights
    module.call = tf.function(lambda x: module.layer(x), input_signature=[tf.TensorSpec((None, 4, 4, 8))])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    assert b"Knsde" not in (tmp_path / "saved" / "saved_model.pb").read_bytes()
