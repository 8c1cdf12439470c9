"""GroupNorm as one fused multiply-add per element, for channels-last images."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_nsde")
class GroupNorm(keras.layers.Layer):
    """y = (x - mean_g) / sqrt(var_g + eps) * gamma + beta, statistics per example and group.

    Same function and weights (gamma, beta) as `keras.layers.GroupNormalization`
    on `(batch, H, W, C)`, computed faster on CPUs: the per-channel sums of x
    and x^2 over (H, W) give each group's mean and variance, which fold with
    gamma and beta into a per-(example, channel) scale and shift, so the big
    tensor is read twice and written once. The gradient is written out in
    closed form the same way (`_group_norm`) instead of autodiff's chain.
    The variance is E[x^2] - E[x]^2, accurate in float32 for activations whose
    mean is not many orders of magnitude above their spread (statistics are
    taken in float32 under mixed precision).

    Args:
        groups: number of groups; must divide the channels.
        epsilon: added to the variance.
    """

    def __init__(self, groups=32, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(f"groups must divide the channels ({channels}). Received: groups={self.groups}")
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        self.built = True

    def call(self, x):
        stats_dtype = "float64" if x.dtype == tf.float64 else "float32"  # float32 statistics for float16 x
        gamma, beta = tf.cast(self.gamma, stats_dtype), tf.cast(self.beta, stats_dtype)
        return _group_norm(x, gamma, beta, self.groups, self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}


def _group_norm(x, gamma, beta, groups, epsilon):
    """GroupNorm of `(batch, H, W, C)` x as y = x * scale + shift, with its gradient in closed form.

    Per example and group g of m = H * W * C / groups elements, with mean mu,
    r = 1 / sqrt(var + eps) and x_hat = (x - mu) r, the gradient of y = gamma x_hat + beta is

        dx = r gamma dy - r mean_g(gamma dy) - r x_hat mean_g(gamma dy x_hat),

    which needs only the per-channel sums S1 = sum_HW dy and S2 = sum_HW dy x:
    dx = scale dy + a x + b with per-(example, channel) a and b.
    """
    channels = x.shape[-1]
    grouped = [-1, groups, channels // groups]
    stats_dtype = gamma.dtype
    size = tf.cast(tf.shape(x)[1] * tf.shape(x)[2] * (channels // groups), stats_dtype)

    def per_group(sums_c):  # (batch, C) -> (batch, groups, 1)
        return tf.reduce_sum(tf.reshape(sums_c, grouped), axis=-1, keepdims=True)

    def per_channel(values):  # (batch, groups, C / groups) -> (batch, 1, 1, C)
        return tf.reshape(values, [-1, 1, 1, channels])

    stats_x = tf.cast(x, stats_dtype)
    mean = per_group(tf.reduce_sum(stats_x, axis=[1, 2])) / size
    mean_square = per_group(tf.reduce_sum(tf.square(stats_x), axis=[1, 2])) / size
    inverse_std = tf.math.rsqrt(tf.maximum(mean_square - tf.square(mean), 0.0) + epsilon)

    # The statistics are inputs, computed above, so that the gradient function
    # below is itself differentiable in x (second derivatives are exact); its
    # dx is the total derivative, so they get no gradient of their own.
    @tf.custom_gradient
    def normalize(x, gamma, beta, mean, inverse_std):
        gamma_g, beta_g = tf.reshape(gamma, grouped[1:]), tf.reshape(beta, grouped[1:])
        scale = gamma_g * inverse_std
        shift = beta_g - mean * scale
        y = x * tf.cast(per_channel(scale), x.dtype) + tf.cast(per_channel(shift), x.dtype)

        def gradient(dy):
            stats_dy = tf.cast(dy, stats_dtype)
            sum_dy = tf.reshape(tf.reduce_sum(stats_dy, axis=[1, 2]), grouped)
            sum_dy_x = tf.reshape(tf.reduce_sum(stats_dy * tf.cast(x, stats_dtype), axis=[1, 2]), grouped)
            sum_dy_centred_x = sum_dy_x - mean * sum_dy
            dgamma = tf.reshape(tf.reduce_sum(inverse_std * sum_dy_centred_x, axis=0), [channels])
            dbeta = tf.reshape(tf.reduce_sum(sum_dy, axis=0), [channels])
            mean_gamma_dy = tf.reduce_sum(gamma_g * sum_dy, axis=-1, keepdims=True) / size
            mean_gamma_dy_x_hat = tf.reduce_sum(gamma_g * sum_dy_centred_x, axis=-1, keepdims=True) * inverse_std / size
            x_coefficient = -tf.square(inverse_std) * mean_gamma_dy_x_hat
            offset = -mean * x_coefficient - inverse_std * mean_gamma_dy
            ones = tf.ones_like(gamma_g)
            dx = (
                dy * tf.cast(per_channel(gamma_g * inverse_std), dy.dtype)
                + x * tf.cast(per_channel(x_coefficient * ones), x.dtype)
                + tf.cast(per_channel(offset * ones), x.dtype)
            )
            return dx, dgamma, dbeta, None, None

        return y, gradient

    return normalize(x, gamma, beta, mean, inverse_std)
