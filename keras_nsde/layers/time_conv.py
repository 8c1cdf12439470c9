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
    h, so borders are exact. Zero padding makes conv(1, K_t) separable:

        conv(1, K_t)[y, x, o] = sum_{a, b} R[y, a] C[x, b] K_t[a, b, o],
        R[y, a] = 1 if 0 <= y + a - k // 2 < height (C likewise for width),

    one small matrix product (`_time_map`) instead of concatenating a
    channel to every state, or a single-channel convolution whose kernel
    gradient costs a full library call per drift evaluation.

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
        # split, not two slices: its gradient is one concatenation, where each slice's is a zero-filled kernel
        time_kernel, state_kernel = ops.split(self.kernel, [1], axis=2)
        time_map = _time_map(time_kernel[:, :, 0, :], ops.shape(h)[1], ops.shape(h)[2], h.dtype)
        out = same_conv2d(h, state_kernel)
        return out + (ops.cast(t, h.dtype) * time_map + self.bias)  # one full-size add

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


def _valid_taps(size, kernel_size, dtype):
    """(size, kernel_size): 1 where tap a of a 'same' convolution reads inside the image at position y, else 0."""
    position = ops.expand_dims(ops.arange(size), 1) + ops.expand_dims(ops.arange(kernel_size), 0) - kernel_size // 2
    return ops.cast(ops.logical_and(position >= 0, position < size), dtype)


def _time_map(time_kernel, height, width, dtype):
    """conv(ones(height, width), time_kernel) with 'same' zero padding: (height, width, filters).

    time_kernel is (k, k, filters). The map is one matrix product,
    (H W, k k) taps inside the image times (k k, filters): the valid-tap
    products R[y, a] C[x, b] are constants.
    """
    kernel_size, filters = time_kernel.shape[0], time_kernel.shape[-1]
    rows = _valid_taps(height, kernel_size, dtype)  # (H, k)
    columns = _valid_taps(width, kernel_size, dtype)  # (W, k)
    taps = ops.reshape(rows[:, None, :, None] * columns[None, :, None, :], (height * width, kernel_size * kernel_size))
    time_map = ops.matmul(taps, ops.reshape(time_kernel, (kernel_size * kernel_size, filters)))
    return ops.reshape(time_map, (height, width, filters))
