"""One training step of the paper's CIFAR-10 model: keras_nsde on each Keras backend vs a hand-written TF loop vs PyTorch.

    python benchmarks/step_time.py                  # batch 32, N = 11, multiplicative noise
    python benchmarks/step_time.py --quick          # fewer variants
    python benchmarks/step_time.py --backends jax   # keras_nsde's JAX row only (default: jax torch)

The JAX and PyTorch-backend rows run in child processes
(benchmarks/backend_step_time.py: a process holds one Keras backend), after
the in-process rows, with the same batch and repeats.

All in one process, interleaved, medians of --repeats steps (machines are
noisy: compare ratios from one run). Reports seconds per step, the ratio to
PyTorch (when `pip install -e ".[bench]"` put torch there), and achieved
GFLOP/s against a float32 matmul measured in the same run (the roofline: the
step is compute-bound, ~213 GFLOP at batch 32: 3 time-convolutions
(65 -> 64 channels, 3x3, 30x30) per drift evaluation, 11 evaluations, x3 for
the backward pass). GFLOP/s counts a direct convolution's FLOPs: keras_nsde's
Winograd F(4x4, 3x3) kernels do 4x fewer multiplications, so it can pass the roofline.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_nsde  # noqa: E402
from keras_nsde.models import paper_classifier  # noqa: E402

SIGMA, NUM_STEPS, CHANNELS, SIZE = 1.5, 11, 64, 30


def model_gflop(batch):
    """Forward + backward FLOPs of the paper's model (convolutions; the rest is <1%)."""
    drift_conv = 2 * batch * SIZE * SIZE * CHANNELS * (CHANNELS + 1) * 9
    stem = 2 * batch * SIZE * SIZE * CHANNELS * 3 * 9
    return 3 * (3 * NUM_STEPS * drift_conv + stem) / 1e9


def matmul_gflops(n=2048, repeats=10):
    a = tf.random.normal((n, n))
    matmul = tf.function(lambda a: tf.matmul(a, a))
    matmul(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        matmul(a).numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class ReferenceDrift(keras.layers.Layer):
    """The straightforward drift: Keras GroupNormalization and a concatenated time channel."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norms = [keras.layers.GroupNormalization(32, epsilon=1e-5) for _ in range(4)]
        self.convs = [keras.layers.Conv2D(CHANNELS, 3, padding="same") for _ in range(3)]

    def call(self, h, t):
        for norm, conv in zip(self.norms, self.convs):
            x = tf.nn.relu(norm(h))
            h = conv(tf.concat([tf.ones_like(x[..., :1]) * t, x], axis=-1))
        return self.norms[-1](h)


class ReferenceSDE(keras.layers.Layer):
    """Euler-Maruyama unrolled in Python, noise from tf.random.normal."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.drift = ReferenceDrift()

    def call(self, h, training=None):
        dt = 1.0 / NUM_STEPS
        for n in range(NUM_STEPS):
            h = h + self.drift(h, t=n * dt) * dt + SIGMA * h * tf.random.normal(tf.shape(h)) * dt**0.5
        return h


def reference_model():
    inputs = keras.Input((32, 32, 3))
    x = ReferenceSDE()(keras.layers.Conv2D(CHANNELS, 3)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(keras.layers.GroupNormalization(32, epsilon=1e-5)(x)))
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def mixed_precision_classifier():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return paper_classifier("cifar10", "multiplicative", sigma=SIGMA)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def keras_step(model, jit, x, y):
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    model.train_on_batch(x, y)
    return lambda: model.train_on_batch(x, y)


def torch_step(x, y):
    import torch
    from torch import nn

    class TimeConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(CHANNELS + 1, CHANNELS, 3, padding=1)

        def forward(self, t, h):
            return self.conv(torch.cat([torch.ones_like(h[:, :1]) * t, h], 1))

    class Drift(nn.Module):
        def __init__(self):
            super().__init__()
            self.norms = nn.ModuleList(nn.GroupNorm(32, CHANNELS) for _ in range(4))
            self.convs = nn.ModuleList(TimeConv() for _ in range(3))

        def forward(self, t, h):
            for norm, conv in zip(self.norms, self.convs):
                h = conv(t, torch.relu(norm(h)))
            return self.norms[-1](h)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.drift = nn.Conv2d(3, CHANNELS, 3), Drift()
            self.norm, self.head = nn.GroupNorm(32, CHANNELS), nn.Linear(CHANNELS, 10)

        def forward(self, x):
            h, dt = self.stem(x), 1.0 / NUM_STEPS
            for n in range(NUM_STEPS):
                h = h + self.drift(n * dt, h) * dt + SIGMA * h * torch.randn_like(h) * dt**0.5
            return self.head(torch.relu(self.norm(h)).mean((2, 3)))

    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x_t, y_t = torch.tensor(x).permute(0, 3, 1, 2).contiguous(), torch.tensor(y, dtype=torch.long)

    def step():
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x_t), y_t).backward()
        optimizer.step()

    step()
    return step


def backend_step_times(backend, batch, repeats):
    """Step times of keras_nsde on another Keras backend, from a child process (NaN if it fails)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backend_step_time.py")
    finished = subprocess.run(
        [sys.executable, script, "--batch", str(batch), "--repeats", str(repeats)],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
    )
    if finished.returncode != 0:
        print(f"the {backend} row failed:\n{finished.stderr[-2000:]}")
        return [float("nan")]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    print(f"{backend}: warm-up steps (compilation included) {', '.join(f'{t:.1f}' for t in report['warmup'])} s")
    return report["steps"]


def median_seconds(step, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only keras_nsde autodiff, reference and torch")
    parser.add_argument("--xla", action="store_true", help="add XLA variants (on this CPU a step took ~64 s)")
    parser.add_argument("--mixed-precision", action="store_true", help="add a mixed_float16 keras_nsde variant")
    parser.add_argument("--malloc", action="store_true", help="keep malloc instead of opting in to the pooled allocator")
    parser.add_argument("--backends", nargs="*", default=["jax", "torch"], help="Keras backends with a row of their own")
    args = parser.parse_args()
    if not args.malloc:
        keras_nsde.use_pooled_cpu_allocator()  # before any tensor exists
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, args.batch)

    variants = {"keras_nsde autodiff": lambda: keras_step(paper_classifier("cifar10", "multiplicative", sigma=SIGMA), False, x, y)}
    if not args.quick:
        variants["keras_nsde pathwise"] = lambda: keras_step(
            paper_classifier("cifar10", "multiplicative", sigma=SIGMA, gradient=keras_nsde.gradients.Pathwise(checkpoints=NUM_STEPS)), False, x, y)
    if args.mixed_precision:
        variants["keras_nsde autodiff mixed_float16"] = lambda: keras_step(mixed_precision_classifier(), False, x, y)
    if args.xla:
        variants["keras_nsde autodiff XLA"] = lambda: keras_step(paper_classifier("cifar10", "multiplicative", sigma=SIGMA), True, x, y)
    variants["hand-written Keras/TF loop"] = lambda: keras_step(reference_model(), False, x, y)
    if args.xla:
        variants["hand-written Keras/TF loop XLA"] = lambda: keras_step(reference_model(), True, x, y)
    try:
        import torch  # noqa: F401

        variants["PyTorch Euler-Maruyama loop"] = lambda: torch_step(x, y)
    except ImportError:
        print("torch not installed: no PyTorch row (pip install -e '.[bench]')")

    steps = {name: build() for name, build in variants.items()}
    roofline = matmul_gflops()
    results = {name: [] for name in steps}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit every variant alike
        for name, step in steps.items():
            results[name].append(median_seconds(step, 1))
    for backend in args.backends:
        results[f"keras_nsde autodiff, Keras {backend} backend"] = backend_step_times(backend, args.batch, args.repeats)
    roofline = (roofline + matmul_gflops()) / 2
    gflop = model_gflop(args.batch)
    torch_time = np.median(results.get("PyTorch Euler-Maruyama loop", [np.nan]))
    print(f"\nbatch {args.batch}, N={NUM_STEPS}, {gflop:.0f} GFLOP per step; float32 matmul {roofline:.1f} GFLOP/s "
          f"(roofline {gflop / roofline:.2f} s); {os.cpu_count()} CPUs\n")
    print("| implementation | s / step | vs PyTorch | GFLOP/s (direct-conv FLOPs) | % of matmul roofline |")
    print("|---|---|---|---|---|")
    for name, times in results.items():
        t = float(np.median(times))
        print(f"| {name} | {t:.2f} | {t / torch_time:.2f} | {gflop / t:.0f} | {100 * gflop / t / roofline:.0f}% |")


if __name__ == "__main__":
    main()
