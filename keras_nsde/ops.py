"""The default drifts' operations, written once in keras.ops; a backend may run a faster drop-in of each.

    y = keras_nsde.ops.group_norm(x, gamma, beta, groups=32, epsilon=1e-5, relu=True)
    y = keras_nsde.ops.affine(x, kernel, bias)                     # a Dense layer's x @ kernel + bias

`backend.accelerated(name, x)` returns the backend's faster implementation of
the same function for x, or None: on TensorFlow, compiled one-pass CPU
kernels for the group norm and Winograd or forward-kernel-gradient
convolutions (`keras_nsde.backend.tensorflow`), tested equal to these; on
eager PyTorch, `torch.addmm` for the affine map (one op where a Dense layer's
`call` is two keras.ops, each with its Python conversions, at every solver
step).
"""

from keras import ops

from keras_nsde import backend


def group_norm(x, gamma, beta, groups, epsilon, relu=False):
    """y = act((x - mean_g) / sqrt(var_g + eps) * gamma + beta) on `(batch, H, W, C)`, statistics per example and group.

    Per-channel sums of x and x^2 over (H, W), contiguous reductions, give
    each group's mean and variance (E[x^2] - E[x]^2; float32 statistics for
    half-precision x); with gamma and beta they fold into one
    per-(example, channel) scale and shift, so y = act(x * scale + shift) is
    a single elementwise pass over the big tensor, instead of a reduction
    over (H, W, channels of a group) and a chain of elementwise passes.
    Differentiated by autodiff (every order).

    Args:
        x: `(batch, H, W, C)`.
        gamma: `(C,)` scale.
        beta: `(C,)` offset.
        groups: number of groups; divides C.
        epsilon: added to the variance.
        relu: act = ReLU (else the identity).
    """
    fast = backend.get().accelerated("group_norm", x)
    if fast is not None:
        return fast(x, gamma, beta, groups, epsilon, relu)
    batch, channels = ops.shape(x)[0], x.shape[-1]
    statistics = "float32" if ops.dtype(x) in ("float16", "bfloat16") else ops.dtype(x)
    wide = ops.cast(x, statistics)
    count = ops.cast(ops.shape(x)[1] * ops.shape(x)[2] * (channels // groups), statistics)

    def group_means(channel_sums):  # (batch, C) -> (batch, groups, 1)
        return ops.sum(ops.reshape(channel_sums, (batch, groups, -1)), axis=-1, keepdims=True) / count

    mean = group_means(ops.sum(wide, axis=(1, 2)))
    variance = ops.maximum(group_means(ops.sum(ops.square(wide), axis=(1, 2))) - ops.square(mean), 0.0)
    grouped_gamma = ops.reshape(ops.cast(gamma, statistics), (groups, -1))
    scale = ops.rsqrt(variance + epsilon) * grouped_gamma  # (batch, groups, C / groups)
    shift = ops.reshape(ops.cast(beta, statistics), (groups, -1)) - mean * scale
    y = wide * ops.reshape(scale, (batch, 1, 1, channels)) + ops.reshape(shift, (batch, 1, 1, channels))
    return ops.cast(ops.relu(y) if relu else y, x.dtype)


def same_conv2d(x, kernel):
    """conv2d(x, kernel), stride 1, 'same' zero padding: `(batch, H, W, C_in)` * `(k, k, C_in, C_out)`."""
    fast = backend.get().accelerated("same_conv2d", x)
    if fast is not None:
        return fast(x, kernel)
    return ops.conv(x, kernel, strides=1, padding="same")


def affine(x, kernel, bias):
    """x @ kernel + bias: `(batch, n)` @ `(n, m)` + `(m,)` -> `(batch, m)` (a Dense layer's product)."""
    fast = backend.get().accelerated("affine", x)
    if fast is not None:
        return fast(x, kernel, bias)
    return ops.add(ops.matmul(x, kernel), bias)
