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
    tensor is read twice and written once, and its gradient is as cheap.
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
        channels = x.shape[-1]
        stats_x = tf.cast(x, "float32")
        mean_c = tf.reduce_mean(stats_x, axis=[1, 2])  # (batch, C)
        square_c = tf.reduce_mean(tf.square(stats_x), axis=[1, 2])
        grouped = [-1, self.groups, channels // self.groups]
        mean_g = tf.reduce_mean(tf.reshape(mean_c, grouped), axis=-1, keepdims=True)
        square_g = tf.reduce_mean(tf.reshape(square_c, grouped), axis=-1, keepdims=True)
        inverse_std = tf.math.rsqrt(tf.maximum(square_g - tf.square(mean_g), 0.0) + self.epsilon)
        gamma = tf.reshape(tf.cast(self.gamma, "float32"), grouped[1:])
        beta = tf.reshape(tf.cast(self.beta, "float32"), grouped[1:])
        scale = tf.reshape(gamma * inverse_std, [-1, 1, 1, channels])
        shift = tf.reshape(beta - mean_g * gamma * inverse_std, [-1, 1, 1, channels])
        return x * tf.cast(scale, x.dtype) + tf.cast(shift, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}
