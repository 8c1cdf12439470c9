"""GroupNorm (optionally followed by ReLU) in one pass per direction, for channels-last images."""

import keras

from keras_nsde import ops, validation


@keras.saving.register_keras_serializable(package="keras_nsde")
class GroupNorm(keras.layers.Layer):
    """y = act((x - mean_g) / sqrt(var_g + eps) * gamma + beta), statistics per example and group.

    Same function and weights (gamma, beta) as `keras.layers.GroupNormalization`
    on `(batch, H, W, C)`, computed in fewer passes (`keras_nsde.ops.group_norm`):
    the per-channel sums of x and x^2 over (H, W) give each group's mean and
    variance, which fold with gamma and beta into a per-(example, channel)
    scale and shift, so the big tensor is read twice and written once, the
    ReLU (`relu=True`) fused into the write. On TensorFlow CPUs, float32 runs
    as compiled one-pass kernels with a closed-form gradient. The variance is
    E[x^2] - E[x]^2, accurate in float32 for activations whose mean is not many
    orders of magnitude above their spread (statistics are taken in float32
    under mixed precision).

    Args:
        groups: number of groups; must divide the channels.
        epsilon: added to the variance.
        relu: apply ReLU to the result (act), fused into the same pass.
    """

    def __init__(self, groups=32, epsilon=1e-5, relu=False, **kwargs):
        super().__init__(**kwargs)
        self.groups = validation.integer("groups", groups, minimum=1)
        self.epsilon = validation.number("epsilon", epsilon, minimum=0.0)
        self.relu = validation.boolean("relu", relu)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(f"groups must divide the channels ({channels}). Received: groups={self.groups}")
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        self.built = True

    def call(self, x):
        return ops.group_norm(x, self.gamma, self.beta, self.groups, self.epsilon, self.relu)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon, "relu": self.relu}
