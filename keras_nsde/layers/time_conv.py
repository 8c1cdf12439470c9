"""A 'same' convolution over [t, h]: one constant time channel, then h."""

import keras
from keras import ops

from keras_nsde import validation
from keras_nsde.ops import same_conv2d


@keras.saving.register_keras_serializable(package="keras_nsde")
class TimeConv2D(keras.layers.Layer):
    """conv([t * 1, h]) + b with a kernel of shape (k, k, C_in + 1, filters).

    The paper's drift convolves h concatenated with a constant plane holding
    t. That plane's contribution is t * conv(1, K_t), where K_t is the
    kernel slice of the time channel and the ones-plane is zero-padded like
    h, so borders are exact. Computing it that way costs a tiny single-channel
    convolution instead of concatenating a channel to every state.

    Args:
        filters: output channels.
        kernel_size: odd int, the square kernel's side (default 3).

    Call arguments:
        h: `(batch, height, width, C_in)`.
        t: scalar time.
    """

    def __init__(self, filters, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        filters = validation.integer("filters", filters, minimum=1)
        kernel_size = validation.integer("kernel_size", kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int. Received: kernel_size={kernel_size!r}")
        self.filters = filters
        self.kernel_size = kernel_size

    def build(self, input_shape):
        in_channels = input_shape[-1] + 1
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, in_channels, self.filters),
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.built = True

    def call(self, h, t):
        time_kernel, state_kernel = self.kernel[:, :, :1, :], self.kernel[:, :, 1:, :]
        height, width = ops.shape(h)[1], ops.shape(h)[2]
        ones_plane = ops.ones((1, height, width, 1), dtype=h.dtype)
        time_map = ops.conv(ones_plane, time_kernel, padding="same")
        out = same_conv2d(h, state_kernel)
        return out + (ops.cast(t, h.dtype) * time_map + self.bias)  # one full-size add

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}
