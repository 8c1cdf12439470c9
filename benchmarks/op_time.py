"""Where a training step's time goes: the drift's ops, forward and backward, TF kernels vs keras_nsde vs PyTorch.

    python benchmarks/op_time.py            # the paper's CIFAR-10 state (32, 30, 30, 64)

Times (fastest of --repeats, in ms) on one state of the paper's SDE block:
the 3x3 convolution's three TF kernels (forward, Conv2DBackpropInput,
Conv2DBackpropFilter), forward+backward with TF's gradient and with
`same_conv2d`'s forward-convolution gradient, keras_nsde's Winograd kernels
(F(4x4) and F(2x2): forward, filter gradient; forward+backward), GroupNorm(+ReLU) forward+backward
(keras_nsde's fused kernels and their TF-op twins, Keras, PyTorch), one
step's Gaussian increments (keras_nsde's Box-Muller vs
`tf.random.stateless_normal` vs `torch.randn`), and PyTorch's convolution.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_nsde  # noqa: E402
from keras_nsde import GroupNorm  # noqa: E402
from keras_nsde.brownian import SeededGaussianIncrements  # noqa: E402
from keras_nsde.backend.tensorflow.kernels import conv_ops, group_norm_ops, load_kernels  # noqa: E402
from keras_nsde.backend.tensorflow.same_conv import _conv_with_forward_gradients, same_conv2d  # noqa: E402


def fastest_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def forward_backward(fn, variables):
    """A tf.function computing d/d(x, variables) of sum(fn(x) * weights)."""

    @tf.function
    def step(x, weights):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * weights)
        return tape.gradient(loss, [x] + variables)

    return step


def tf_rows(batch, size, channels, repeats):
    x = tf.random.normal((batch, size, size, channels))
    weights = tf.random.normal((batch, size, size, channels))
    kernel = tf.Variable(tf.random.normal((3, 3, channels, channels)) * 0.05)
    shape = [batch, size, size, channels]
    strides = [1, 1, 1, 1]
    kernels = {
        "conv forward (Conv2D)": tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME")),
        "conv Conv2DBackpropInput": tf.function(lambda: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=shape, filter=kernel, out_backprop=weights, strides=strides, padding="SAME")),
        "conv Conv2DBackpropFilter": tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=[3, 3, channels, channels], out_backprop=weights, strides=strides, padding="SAME")),
    }
    if conv_ops.can_winograd(x, kernel):
        for tile in (4, 2):  # F(4x4, 3x3), the default, and F(2x2, 3x3)
            kernels[f"conv forward, keras_nsde Winograd F({tile}x{tile})"] = tf.function(
                lambda tile=tile: conv_ops.winograd_conv2d(x, kernel, tile=tile))
            kernels[f"conv filter gradient, keras_nsde Winograd F({tile}x{tile})"] = tf.function(
                lambda tile=tile: load_kernels().knsde_winograd_filter_grad(x, weights, tile=tile))
    rows = {name: fastest_ms(lambda f=f: f().numpy(), repeats) for name, f in kernels.items()}
    ours, ours_relu = GroupNorm(32), GroupNorm(32, relu=True)
    reference = keras.layers.GroupNormalization(32, epsilon=1e-5)
    for layer in (ours, ours_relu, reference):
        layer.build(x.shape)
    steps = {
        "conv fwd+bwd, TF gradient": forward_backward(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"), [kernel]),
        "conv fwd+bwd, forward-convolution gradients": forward_backward(
            lambda x: _conv_with_forward_gradients(x, kernel), [kernel]),
        "conv fwd+bwd, keras_nsde same_conv2d": forward_backward(lambda x: same_conv2d(x, kernel), [kernel]),
        "GroupNorm fwd+bwd, keras_nsde": forward_backward(ours, ours.trainable_variables),
        "GroupNorm+ReLU fwd+bwd, keras_nsde": forward_backward(ours_relu, ours_relu.trainable_variables),
        "GroupNorm fwd+bwd, keras.layers.GroupNormalization": forward_backward(reference, reference.trainable_variables),
        "GroupNorm+ReLU fwd+bwd, keras.layers.GroupNormalization": forward_backward(
            lambda x: tf.nn.relu(reference(x)), reference.trainable_variables),
    }
    for name, step in steps.items():
        rows[name] = fastest_ms(lambda s=step: [g.numpy() for g in s(x, weights)], repeats)
    if group_norm_ops.can_fuse(x):
        rows.update(twin_rows(ours, ours_relu, x, weights, repeats))
    seed = tf.Variable([1, 2])  # a variable: a constant seed would be constant-folded away
    noise = {
        "Gaussian increments, keras_nsde (Box-Muller)": tf.function(
            lambda: SeededGaussianIncrements(seed.read_value(), shape, tf.float32, 11, 1 / 11).increment(3)),
        "Gaussian increments, tf.random.stateless_normal": tf.function(
            lambda: tf.random.stateless_normal(shape, seed=seed.read_value(), alg="philox")),
    }
    for name, sample in noise.items():
        rows[name] = fastest_ms(lambda f=sample: f().numpy(), repeats)
    return rows


def twin_rows(norm, norm_relu, x, weights, repeats):
    """The same GroupNorm layers traced on the fused kernels' TF-op twins."""
    can_fuse = group_norm_ops.can_fuse
    group_norm_ops.can_fuse = lambda x: False
    try:
        return {
            f"{name} fwd+bwd, keras_nsde on TF ops": fastest_ms(
                lambda s=forward_backward(layer, layer.trainable_variables): [g.numpy() for g in s(x, weights)], repeats)
            for name, layer in (("GroupNorm", norm), ("GroupNorm+ReLU", norm_relu))
        }
    finally:
        group_norm_ops.can_fuse = can_fuse


def torch_rows(batch, size, channels, repeats):
    import torch

    x = torch.randn(batch, channels, size, size, requires_grad=True)
    weights = torch.randn(batch, channels, size, size)
    conv, norm = torch.nn.Conv2d(channels, channels, 3, padding=1), torch.nn.GroupNorm(32, channels)

    def forward_backward(module):
        (module(x) * weights).sum().backward()

    return {
        "conv fwd+bwd, PyTorch": fastest_ms(lambda: forward_backward(conv), repeats),
        "GroupNorm fwd+bwd, PyTorch": fastest_ms(lambda: forward_backward(norm), repeats),
        "GroupNorm+ReLU fwd+bwd, PyTorch": fastest_ms(
            lambda: forward_backward(lambda x: torch.nn.functional.relu(norm(x))), repeats),
        "Gaussian increments, torch.randn": fastest_ms(lambda: torch.randn(batch, channels, size, size), repeats),
    }


def main():
    keras_nsde.use_pooled_cpu_allocator()  # before any tensor exists
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rows = tf_rows(args.batch, args.size, args.channels, args.repeats)
    try:
        rows.update(torch_rows(args.batch, args.size, args.channels, args.repeats))
    except ImportError:
        print("torch not installed: no PyTorch rows (pip install -e '.[bench]')")
    print(f"\nstate ({args.batch}, {args.size}, {args.size}, {args.channels}), 3x3 convolution, fastest of {args.repeats}\n")
    print("| op | ms |")
    print("|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()
