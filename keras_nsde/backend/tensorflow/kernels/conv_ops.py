"""3x3 stride-1 'same' convolutions by Winograd's F(m x m, 3x3) algorithm on CPU.

    winograd_conv2d(x, kernel, tile=4) = tf.nn.conv2d(x, kernel, 1, "SAME")     x: (B, H, W, C_in), kernel: (3, 3, C_in, C_out)

up to float rounding. Each m x m output tile is A^T [(G g G^T) (.) (B^T d B)] A
for its (m+2) x (m+2) input patch d: (m+2)^2 multiplications per pair of
channels where the direct convolution needs 9 m^2 (m = 4: 36 for 144; m = 2:
16 for 36, 2.25x fewer). m = 4 is the default: 1.78x fewer products than
m = 2 for about one more decimal digit of float32 rounding. Its gradients are
Winograd convolutions too:

    dx = winograd_conv2d(dy, K'),  K'[a, b, o, i] = K[2-a, 2-b, i, o]
    dK = filter_gradient(x, dy)    (Conv2DBackpropFilter; kernel in
                                    `winograd_conv_kernels.cc`, the adjoint
                                    of the forward transforms)

`can_winograd(x, kernel)` says where the kernels run: float32 (B, H, W, C)
inputs on a machine without a GPU, outside XLA and SavedModel tracing
(`can_fuse`), 3x3 kernels, channel counts positive multiples of 8.
Non-finite inputs differ from `tf.nn.conv2d`: an inf pixel gives NaN (inf - inf
in the transforms) in its 3x3 neighbourhood where the direct convolution gives
+-inf.

The gradient of `KnsdeWinogradConv` is written here from the two Winograd ops;
that of `KnsdeWinogradFilterGrad` is its twin's, `Conv2DBackpropFilter`'s, so
derivatives of every order exist.
"""

import tensorflow as tf

from keras_nsde.backend.tensorflow.kernels import can_fuse, load_kernels, register_twin_gradient


def can_winograd(x, kernel):
    shape = kernel.shape
    return (
        x.shape.rank == 4
        and shape.rank == 4
        and tuple(shape[:2]) == (3, 3)
        and all(channels is not None and channels > 0 and channels % 8 == 0 for channels in shape[2:])
        and kernel.dtype == tf.float32
        and can_fuse(x)
    )


def flipped_kernel(kernel):
    """K'[a, b, o, i] = K[k-1-a, k-1-b, i, o]: dx of a stride-1 'same' conv(x, K) is conv(dy, K')."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


def winograd_conv2d(x, kernel, tile=4):
    """conv2d(x, kernel, 1, "SAME") by F(tile x tile, 3x3); tile is 4 or 2."""
    return load_kernels().knsde_winograd_conv(x, kernel, tile=tile)


def _filter_gradient_twin(x, dy):
    kernel_shape = tf.stack([3, 3, tf.shape(x)[3], tf.shape(dy)[3]])
    return tf.raw_ops.Conv2DBackpropFilter(
        input=x, filter_sizes=kernel_shape, out_backprop=dy, strides=[1, 1, 1, 1], padding="SAME"
    )


@tf.RegisterGradient("KnsdeWinogradConv")
def _winograd_conv_gradient(op, dy):
    x, kernel = op.inputs
    skip = getattr(op, "skip_input_indices", None) or ()  # eager tapes say which gradients nobody needs
    kernels, tile = load_kernels(), op.get_attr("tile")
    dx = dkernel = None
    if 0 not in skip:
        dx = kernels.knsde_winograd_conv(dy, flipped_kernel(kernel), tile=tile)
    if 1 not in skip:
        dkernel = kernels.knsde_winograd_filter_grad(x, dy, tile=tile)
    return dx, dkernel


register_twin_gradient("KnsdeWinogradFilterGrad", _filter_gradient_twin)
