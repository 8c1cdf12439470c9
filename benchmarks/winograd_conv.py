"""Winograd F(2x2, 3x3) convolution written in TF ops, against tf.nn.conv2d: measured and dropped.

    python benchmarks/winograd_conv.py

Winograd's algorithm needs 2.25x fewer multiplications than a direct 3x3
convolution (16 per 2x2 output tile instead of 36), so it could beat the
matmul roofline. Written with TF ops (input transform B^T d B by strided
slices, 16 batched matmuls with U = G g G^T, output transform A^T m A) its
transforms are separate memory-bound kernels and cost more than they save.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from op_time import fastest_ms  # noqa: E402  (benchmarks/ is the script's folder)

FILTER_TRANSFORM = tf.constant([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], tf.float32)  # G


def input_transform(d0, d1, d2, d3):  # B^T d along one axis
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def output_transform(m0, m1, m2, m3):  # A^T m along one axis
    return [m0 + m1 + m2, m1 - m2 - m3]


def winograd_conv2d(x, kernel):
    """conv2d(x, kernel, 'same') for 3x3 kernels and even H, W: (n, H, W, C) -> (n, H, W, C_out)."""
    n = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    tiles_h, tiles_w = height // 2, width // 2
    rows = tf.reshape(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), [n, tiles_h + 1, 2, width + 2, channels])
    even, odd = rows[:, :, 0], rows[:, :, 1]
    transformed = []
    for row in input_transform(even[:, :-1], odd[:, :-1], even[:, 1:], odd[:, 1:]):
        cols = tf.reshape(row, [n, tiles_h, tiles_w + 1, 2, channels])
        even_c, odd_c = cols[:, :, :, 0], cols[:, :, :, 1]
        transformed += input_transform(even_c[:, :, :-1], odd_c[:, :, :-1], even_c[:, :, 1:], odd_c[:, :, 1:])
    v = tf.reshape(tf.stack(transformed), [16, -1, channels])
    u = tf.reshape(tf.einsum("ak,klio,bl->abio", FILTER_TRANSFORM, kernel, FILTER_TRANSFORM), [16, channels, -1])
    m = tf.reshape(tf.matmul(v, u), [4, 4, n, tiles_h, tiles_w, -1])
    by_column = [output_transform(*[m[a, b] for b in range(4)]) for a in range(4)]
    y = [output_transform(*[by_column[a][j] for a in range(4)]) for j in range(2)]  # y[j][i]
    tiles = tf.stack([tf.stack([y[0][i], y[1][i]], axis=3) for i in range(2)], axis=2)  # (n, th, 2, tw, 2, C)
    return tf.reshape(tiles, [n, height, width, -1])


def main():
    x = tf.random.normal((32, 30, 30, 64))
    weights = tf.random.normal((32, 30, 30, 64))
    kernel = tf.Variable(tf.random.normal((3, 3, 64, 64)) * 0.05)
    convs = {"tf.nn.conv2d": lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"), "Winograd in TF ops": lambda x: winograd_conv2d(x, kernel)}
    error = tf.reduce_max(tf.abs(convs["Winograd in TF ops"](x) - convs["tf.nn.conv2d"](x)))
    print(f"state (32, 30, 30, 64), 3x3, 64 -> 64; Winograd max abs error {float(error):.1e}\n")
    print("| convolution | forward ms | forward + backward ms (autodiff) |")
    print("|---|---|---|")
    for name, conv in convs.items():
        forward = tf.function(conv)

        @tf.function
        def forward_backward(x, conv=conv):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(conv(x) * weights)
            return tape.gradient(loss, [x, kernel])

        print(f"| {name} | {fastest_ms(lambda: forward(x).numpy(), 20):.1f} | "
              f"{fastest_ms(lambda: [g.numpy() for g in forward_backward(x)], 20):.1f} |")


if __name__ == "__main__":
    main()
