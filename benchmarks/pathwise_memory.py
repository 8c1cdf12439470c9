"""Peak memory and time of one training step against num_steps, for each gradient method.

    python benchmarks/pathwise_memory.py                       # CPU: process peak RSS
    python benchmarks/pathwise_memory.py --steps 20 200 --batch 16

Variants (solver and gradient): "autodiff" and "pathwise" with Euler-Maruyama,
"heun_autodiff" and "reversible" with reversible Heun (Itô interpretation, so
the same SDE). Each (variant, N) runs in a fresh subprocess, so each peak is its own. The
model is one SDEBlock with the paper's default conv drift (GroupNorm, ReLU,
3x3 time-convolutions) and multiplicative noise on a (batch, 16, 16, 32)
state; the step is a compiled `tf.function`: forward, gradient, SGD update.

Growth = the peak bytes held by TensorFlow's allocator during six steps
minus what it held after tracing (`tf.config.experimental.get_memory_info`,
on the CPU or the GPU): the tensors the steps themselves allocated. The
process's peak-RSS growth is reported beside it; it also counts the
runtime's first-run allocations and the allocator's pooling, so it is a
coarser measure.
"""

import argparse
import json
import os
import subprocess
import sys
import time

CHILD_FLAG = "--child"
VARIANTS = {  # name: (solver, gradient method)
    "autodiff": ("euler_maruyama", "autodiff"),
    "pathwise": ("euler_maruyama", "pathwise"),
    "heun_autodiff": ("reversible_heun_ito", "autodiff"),
    "reversible": ("reversible_heun_ito", "reversible"),
}


def measure(variant, num_steps, batch, size, channels, checkpoints):
    """Runs in the child: returns the step's memory growth (MiB) and median time (s)."""
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    import keras_nsde

    device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"

    def tensor_peak_mib():
        """Peak bytes held by TensorFlow's allocator on the device (the pooled allocator's statistics)."""
        return tf.config.experimental.get_memory_info(device)["peak"] / 2**20

    def process_peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    solver, gradient = VARIANTS[variant]
    if solver == "reversible_heun_ito":
        solver = keras_nsde.solvers.ReversibleHeun(interpretation="ito")
    if gradient == "pathwise":
        gradient = keras_nsde.gradients.Pathwise(checkpoints)
    block = keras_nsde.SDEBlock(diffusion="multiplicative", sigma=0.5, num_steps=num_steps, solver=solver, gradient=gradient, seed=0)
    block.build((None, size, size, channels))
    optimizer = keras.optimizers.SGD(0.01)
    optimizer.build(block.trainable_variables)
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, size, size, channels)), "float32")

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(block(x, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, block.trainable_variables), block.trainable_variables))
        return loss

    train_step.get_concrete_function(x)
    tf.config.experimental.reset_memory_stats(device)
    tensors_before, process_before = tf.config.experimental.get_memory_info(device)["current"] / 2**20, process_peak_mib()
    times = []
    for _ in range(6):
        start = time.perf_counter()
        float(train_step(x))
        times.append(time.perf_counter() - start)
    return {
        "growth_mib": tensor_peak_mib() - tensors_before,
        "process_growth_mib": process_peak_mib() - process_before,
        "step_s": float(np.median(times[1:])),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 200])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--checkpoints", type=int, default=None, help="pathwise checkpoints (None: ceil(sqrt(N)))")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    rows = []
    for num_steps in args.steps:
        for variant in args.variants:
            spec = [variant, num_steps, args.batch, args.size, args.channels, args.checkpoints]
            result = subprocess.run(
                [sys.executable, __file__, CHILD_FLAG, json.dumps(spec)],
                capture_output=True, text=True, check=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CPU_ALLOCATOR_USE_BFC": "true"},  # the pooled allocator
            )
            row = {"variant": variant, "num_steps": num_steps, **json.loads(result.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(f"N={num_steps:4d} {variant:13s} growth {row['growth_mib']:8.1f} MiB (process {row['process_growth_mib']:8.1f} MiB)"
                  f"  step {row['step_s']*1000:8.1f} ms", flush=True)

    by_key = {(r["variant"], r["num_steps"]): r for r in rows}
    names = [v for v in VARIANTS if v in args.variants]
    print("\n| N | " + " | ".join(f"{v} growth (MiB)" for v in names) + " | " + " | ".join(f"{v} step (ms)" for v in names) + " |")
    print("|---|" + "---|" * (2 * len(names)))
    for n in args.steps:
        cells = [f"{by_key[(v, n)]['growth_mib']:.1f}" for v in names] + [f"{by_key[(v, n)]['step_s'] * 1000:.0f}" for v in names]
        print(f"| {n} | " + " | ".join(cells) + " |")
    first, last = args.steps[0], args.steps[-1]
    print(f"\nGrowth from N={first} to N={last}: " + ", ".join(
        f"{v} {by_key[(v, last)]['growth_mib'] / by_key[(v, first)]['growth_mib']:.2f}x" for v in names))
    if "autodiff" in names:
        print(f"At N={last}, growth and step time against autodiff: " + ", ".join(
            f"{v} {by_key[(v, last)]['growth_mib'] / by_key[('autodiff', last)]['growth_mib']:.3f} / "
            f"{by_key[(v, last)]['step_s'] / by_key[('autodiff', last)]['step_s']:.2f}" for v in names if v != "autodiff"))
    if "heun_autodiff" in names and "reversible" in names:
        print(f"Reversible against autodiff through the same solver at N={last}: time "
              f"{by_key[('reversible', last)]['step_s'] / by_key[('heun_autodiff', last)]['step_s']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        print(json.dumps(measure(*json.loads(sys.argv[2]))))
    else:
        main()
