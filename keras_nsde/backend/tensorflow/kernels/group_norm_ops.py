"""The four one-pass primitives of GroupNorm(+ReLU) on `(B, H, W, C)` images.

Per image b and channel c, with `(B, C)` coefficients broadcast over H and W:

    channel_moments(x)                         = sum_HW x,  sum_HW x^2
    affine(x, scale, shift, relu)              = act(x * scale + shift)
    masked_channel_sums(dy, x, scale, shift)   = sum_HW m,  sum_HW m * x
    affine_combine(dy, x, (scale, shift), (a, b, c)) = m * a + x * b + c

where act is ReLU or the identity and m = dy * [x * scale + shift > 0] with
relu (the ReLU's gradient mask), m = dy without. The sums are returned in
float32 for half-precision inputs (float64 for float64).

Each runs as the compiled kernel (`keras_nsde.backend.tensorflow.kernels`) when called with
`fused=True`, which `can_fuse(x)` allows for float32 on a machine without a
GPU outside XLA-compiled functions, otherwise as the TensorFlow ops below
(its twin). Decide once per forward pass and pass the same flag to the
backward primitives (a gradient graph may not know it is XLA-compiled).
The kernels' own gradients are their twins' gradients, so anything built on
them differentiates to any order.
"""

import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels import can_fuse, load_kernels, register_twin_gradient

__all__ = ["affine", "affine_combine", "can_fuse", "channel_moments", "masked_channel_sums", "stats_dtype"]


def stats_dtype(dtype):
    """float32 sums for float16/bfloat16 inputs, the input's dtype otherwise."""
    return tf.float32 if tf.as_dtype(dtype).size < 4 else tf.as_dtype(dtype)


def channel_moments(x, fused):
    if fused:
        return load_kernels().knsde_channel_moments(x)
    return _channel_moments(x)


def affine(x, scale, shift, relu, fused):
    if fused:
        return load_kernels().knsde_affine_relu(x, scale, shift, relu=relu)
    return _affine(x, scale, shift, relu)


def masked_channel_sums(dy, x, scale, shift, relu, fused, y=None):
    """`y`, the forward output, is optional: the TF ops take the mask from it (one pass)."""
    if fused and dy.dtype == tf.float32:
        return load_kernels().knsde_masked_channel_sums(dy, x, scale, shift, relu=relu)
    return _masked_channel_sums(dy, x, scale, shift, relu, y)


def affine_combine(dy, x, affine, combination, relu, fused, y=None):
    """m * a + x * b + c for `affine` = (scale, shift) (the forward's, for the mask) and `combination` = (a, b, c)."""
    if fused and dy.dtype == tf.float32:
        return load_kernels().knsde_affine_combine(dy, x, *affine, *combination, relu=relu)
    return _affine_combine(dy, x, *affine, *combination, relu=relu, y=y)


# The twins. Coefficients are (B, C), in any float dtype; big tensors keep x's dtype.


def _broadcast(coefficient, like):
    return tf.cast(coefficient[:, tf.newaxis, tf.newaxis, :], like.dtype)


def _channel_moments(x):
    wide = tf.cast(x, stats_dtype(x.dtype))
    return tf.reduce_sum(wide, axis=[1, 2]), tf.reduce_sum(tf.square(wide), axis=[1, 2])


def _affine(x, scale, shift, relu):
    y = x * _broadcast(scale, x) + _broadcast(shift, x)
    return tf.nn.relu(y) if relu else y


def _masked(dy, x, scale, shift, relu, y=None):
    if not relu:
        return dy
    if y is not None:  # y = relu(x * scale + shift): the same mask, one pass
        return tf.raw_ops.ReluGrad(gradients=dy, features=y)
    return dy * tf.cast(x * _broadcast(scale, x) + _broadcast(shift, x) > 0, dy.dtype)


def _masked_channel_sums(dy, x, scale, shift, relu, y=None):
    dtype = stats_dtype(dy.dtype)
    masked = tf.cast(_masked(dy, x, scale, shift, relu, y), dtype)
    return tf.reduce_sum(masked, axis=[1, 2]), tf.reduce_sum(masked * tf.cast(x, dtype), axis=[1, 2])


def _affine_combine(dy, x, *coefficients, relu=False, y=None):
    scale, shift, a, b, c = coefficients
    masked = _masked(dy, x, scale, shift, relu, y)
    return masked * _broadcast(a, dy) + x * _broadcast(b, x) + _broadcast(c, x)


register_twin_gradient("KnsdeChannelMoments", _channel_moments)
register_twin_gradient("KnsdeAffineRelu", _affine, ["relu"])
register_twin_gradient("KnsdeMaskedChannelSums", _masked_channel_sums, ["relu"])
register_twin_gradient("KnsdeAffineCombine", _affine_combine, ["relu"])
