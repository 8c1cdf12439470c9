"""GroupNorm(+ReLU) on TensorFlow: closed-form gradient, one-pass CPU kernels (`keras_nsde.backend.tensorflow.kernels`)."""

import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels import group_norm_ops


def group_norm(x, gamma, beta, groups, epsilon, relu=False):
    """act((x - mean_g) / sqrt(var_g + eps) * gamma + beta) on `(batch, H, W, C)`; float32 statistics for float16 x."""
    stats_dtype = group_norm_ops.stats_dtype(x.dtype)
    return _group_norm(x, tf.cast(gamma, stats_dtype), tf.cast(beta, stats_dtype), groups, epsilon, relu)


def _group_norm(x, gamma, beta, groups, epsilon, relu=False):
    """GroupNorm of `(batch, H, W, C)` x as y = act(x * scale + shift), with its gradient in closed form.

    Per example and group g of m = H * W * C / groups elements, with mean mu,
    r = 1 / sqrt(var + eps) and x_hat = (x - mu) r, the gradient of
    y = gamma x_hat + beta (before the ReLU, whose mask turns dy into m) is

        dx = r gamma m - r mean_g(gamma m) - r x_hat mean_g(gamma m x_hat),

    which needs only the per-channel sums S1 = sum_HW m and S2 = sum_HW m x:
    dx = scale m + a x + b with per-(example, channel) a and b. The passes
    over the big tensors are `group_norm_ops`' one-pass primitives.
    """
    channels = x.shape[-1]
    grouped = [-1, groups, channels // groups]
    stats_dtype = gamma.dtype
    size = tf.cast(tf.shape(x)[1] * tf.shape(x)[2] * (channels // groups), stats_dtype)

    def per_group(sums_c):  # (batch, C) -> (batch, groups, 1)
        return tf.reduce_sum(tf.reshape(sums_c, grouped), axis=-1, keepdims=True)

    def per_channel(values):  # (batch, groups, C / groups) -> (batch, C)
        return tf.reshape(values, [-1, channels])

    fused = group_norm_ops.can_fuse(x)
    sum_x, sum_square = group_norm_ops.channel_moments(x, fused)
    mean = per_group(sum_x) / size
    inverse_std = tf.math.rsqrt(tf.maximum(per_group(sum_square) / size - tf.square(mean), 0.0) + epsilon)

    # The statistics are inputs, computed above, so that the gradient function
    # below is itself differentiable in x (second derivatives are exact); its
    # dx is the total derivative, so they get no gradient of their own.
    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def normalize(x, gamma, beta, mean, inverse_std):
        gamma_g, beta_g = tf.reshape(gamma, grouped[1:]), tf.reshape(beta, grouped[1:])
        scale = per_channel(gamma_g * inverse_std)
        shift = per_channel(beta_g - mean * gamma_g * inverse_std)
        y = group_norm_ops.affine(x, scale, shift, relu, fused)

        def gradient(dy):
            sum_m, sum_m_x = group_norm_ops.masked_channel_sums(dy, x, scale, shift, relu, fused, y)
            sum_m, sum_m_x = tf.reshape(sum_m, grouped), tf.reshape(sum_m_x, grouped)
            sum_m_centred_x = sum_m_x - mean * sum_m
            dgamma = tf.reshape(tf.reduce_sum(inverse_std * sum_m_centred_x, axis=0), [channels])
            dbeta = tf.reshape(tf.reduce_sum(sum_m, axis=0), [channels])
            mean_gamma_m = tf.reduce_sum(gamma_g * sum_m, axis=-1, keepdims=True) / size
            mean_gamma_m_x_hat = tf.reduce_sum(gamma_g * sum_m_centred_x, axis=-1, keepdims=True) * inverse_std / size
            x_coefficient = -tf.square(inverse_std) * mean_gamma_m_x_hat
            offset = -mean * x_coefficient - inverse_std * mean_gamma_m
            ones = tf.ones_like(gamma_g)
            combination = (scale, per_channel(x_coefficient * ones), per_channel(offset * ones))
            dx = group_norm_ops.affine_combine(dy, x, (scale, shift), combination, relu, fused, y)
            return dx, dgamma, dbeta, None, None

        return y, gradient

    return normalize(x, gamma, beta, mean, inverse_std)
