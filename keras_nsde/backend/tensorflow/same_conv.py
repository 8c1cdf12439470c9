"""A stride-1 'same' convolution whose gradient runs on the forward convolution kernel.

On CPUs TensorFlow's (oneDNN) forward Conv2D is faster than its two backward
kernels (benchmarks/op_time.py; figures in docs/benchmarks.md). Both gradients
are themselves forward convolutions:

    dx = conv(dy, K'),  K'[a, b, o, i] = K[k-1-a, k-1-b, i, o]
    dK[a, b, i, o] = sum_{n, y, x} x_pad[n, y+a, x+b, i] dy[n, y, x, o]
                   = conv(x with (i, n) as (batch, channels), dy as a kernel, padding p)

which make forward and backward together faster than with TF's gradient, so
`same_conv2d` uses them on CPU. Where keras_nsde's compiled
kernels run (float32, 3x3, channels multiples of 8) it is faster still:
Winograd F(4x4, 3x3) (`keras_nsde.backend.tensorflow.kernels.conv_ops`). With a GPU visible it
is plain `tf.nn.conv2d` and its cuDNN gradient.
"""

import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels import conv_ops


def same_conv2d(x, kernel):
    """conv2d(x, kernel), stride 1, 'same' zero padding (faster kernels for odd square kernels).

    Args:
        x: `(batch, height, width, C_in)`.
        kernel: `(k, k, C_in, C_out)`; other kernels run `tf.nn.conv2d` itself.

    Returns:
        `(batch, height, width, C_out)`; values and gradients equal
        `tf.nn.conv2d(x, kernel, 1, "SAME")`'s up to float rounding.
    """
    if conv_ops.can_winograd(x, kernel):
        return conv_ops.winograd_conv2d(x, kernel)
    height, width = kernel.shape[:2]
    if tf.config.list_physical_devices("GPU") or height != width or height % 2 == 0:
        # the forward-kernel gradient pads k // 2 on each side: an odd square kernel only
        return tf.nn.conv2d(x, kernel, 1, "SAME")
    return _conv_with_forward_gradients(x, kernel)


@tf.autograph.experimental.do_not_convert  # autograph would convert the returned gradient function
@tf.custom_gradient
def _conv_with_forward_gradients(x, kernel):
    def gradient(dy):
        pad = kernel.shape[0] // 2
        dx = tf.nn.conv2d(dy, conv_ops.flipped_kernel(kernel), 1, "SAME")
        with tf.control_dependencies([dx]):  # one convolution at a time: concurrent ones thrash a small CPU's cores
            channels_as_batch = tf.transpose(x, [3, 1, 2, 0])  # (C_in, H, W, batch)
        dy_as_kernel = tf.transpose(dy, [1, 2, 0, 3])  # (H, W, batch, C_out)
        padding = [[0, 0], [pad, pad], [pad, pad], [0, 0]]  # explicit: tf.pad would copy the input
        dkernel = tf.nn.conv2d(channels_as_batch, dy_as_kernel, 1, padding)  # (C_in, k, k, C_out)
        return dx, tf.transpose(dkernel, [1, 2, 0, 3])

    return tf.nn.conv2d(x, kernel, 1, "SAME"), gradient
